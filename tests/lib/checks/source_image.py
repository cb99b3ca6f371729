"""Checks of tests/integ/source_image.sh: the source's image built in memory or generated."""
import json


def _load(p):
    return json.load(open(p))


def verified(path):
    """A migration that exited 0 with all 16384 pages verified against the source's digests, none
    corrupt or missing, no bad write stamp and no guest read that differed from the seed's image."""
    d = _load(path)
    r = d["results"]; v = r["verify"]
    assert d["exit_code"] == 0 and v["done"] and v["pages_verified"] == 16384, (path, v)
    assert not v["pages_corrupt"] and not v["pages_missing"] and not v["bad_write_stamps"], (path, v)
    assert r["guest"]["read_mismatches"] == 0, path
    return d


def same(mem, gen, auto):
    """memory, generate and auto runs of one seed and zero model: each verified(); the JSON says
    memory (build time > 0), generate (build time 0) and, for this 64 MiB image, auto chose memory;
    in both modes exactly the image's zero pages arrived as zero pages."""
    dm, dg, da = verified(mem), verified(gen), verified(auto)
    tm, tg, ta = (d["results"]["transport"] for d in (dm, dg, da))
    assert tm["source_image"] == "memory" and tm["source_image_build_ns"] > 0, tm
    assert 0 < tm["source_image_build_cpu_ns"] < 2 * tm["source_image_build_ns"] + 50e6, tm   # one thread built it
    assert tg["source_image_build_cpu_ns"] == 0, tg
    assert tg["source_image"] == "generate" and tg["source_image_build_ns"] == 0, tg
    assert ta["source_image"] == "memory" and ta["source_image_reason"].startswith("auto"), ta
    # --source-send=auto: an image in memory leaves by splice, a generated one by writev
    assert tm["source_send"] == "splice" and tm["source_send_reason"] == "auto", tm
    assert tg["source_send"] == "writev" and "generates" in tg["source_send_reason"], tg
    assert dm["config"]["source-image"] == "memory" and dg["config"]["source-image"] == "generate"
    pm, pg = dm["results"]["pages"], dg["results"]["pages"]
    assert pm["total"] == pg["total"] == 16384 and pm["image_zero_pages"] == pg["image_zero_pages"] > 0, (pm, pg)
    assert pm["zero"] == pg["zero"] == pm["image_zero_pages"], (pm, pg)   # every zero page went as ZERO
    print("memory: built in %.3f s; zero pages %d (memory) %d (generate)" % (
        tm["source_image_build_ns"] / 1e9, pm["zero"], pg["zero"]))


def corrupt(path):
    """PCB_TEST_CORRUPT_PAGE with --source-image=memory: the run failed and its verification
    counted exactly the one corrupted page (100)."""
    d = _load(path)
    v = d["results"]["verify"]
    assert d["exit_code"] != 0 and v["pages_corrupt"] == 1 and v["first_bad_pages"] == [100], v


def send(path, want, reason):
    """verified(); results.transport.source_send is WANT and its reason contains REASON; without
    pre-copy, exactly the image's zero pages arrived as zero pages (splice judges a built image's
    pages by pagemap, writev reads each one: the same pages either way)."""
    d = verified(path)
    t, pg = d["results"]["transport"], d["results"]["pages"]
    assert t["source_send"] == want and reason in t["source_send_reason"], (path, t)
    assert pg.get("precopy") or pg["zero"] == pg["image_zero_pages"] > 0, (path, pg)
    print("%s: %s (%s)" % (path.rsplit("/", 1)[-1], t["source_send"], t["source_send_reason"]))
