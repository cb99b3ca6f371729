#include "cli/options.h"
#include "common/json.h"
#include "common/util.h"
#include "common/pin.h"
#include "install/install.h"
#include "policies/policy.h"
#include "workloads/workload.h"
#include "wire/proto.h"
#include "source/source.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One table for every command (fio's model): parsing, --help, the man page and the JSON echo. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define OFF(f) offsetof(struct pcb_config, f)
#define SZ(f) sizeof(((struct pcb_config *)0)->f)
#define MIG (PCB_CMD_RUN | PCB_CMD_DEST)
#define SRC PCB_CMD_SOURCE
#define SIM PCB_CMD_SIMULATE
#define FLOOR PCB_CMD_FLOOR
#define IMG (PCB_CMD_IMAGE_STATS | PCB_CMD_IMAGE_DUMP)

/* categories, in the order --help and the man page list them */
static const char *const categories[] = { "guest", "pager", "network", "trace", "output", "model", "floor", "bench", "image", NULL };
static const char *const category_titles[] = {
	"Guest and workload", "Pager", "Source and network", "Tracing", "Output", "Simulator model",
	"Floor benchmark", "Experiments", "Memory image files", NULL,
};

static const struct pcb_choice ch_auto_on_off[] = { { "auto", PCB_AUTO }, { "on", PCB_ON }, { "off", PCB_OFF }, { NULL, 0 } };
static const struct pcb_choice ch_on_off[] = { { "on", PCB_ON }, { "off", PCB_OFF }, { NULL, 0 } };
static const struct pcb_choice ch_page_size[] = { { "4K", PCB_PAGE_4K }, { "2M", PCB_PAGE_2M }, { NULL, 0 } };
static const struct pcb_choice ch_zero_model[] = { { "uniform", PCB_ZERO_UNIFORM }, { "runs", PCB_ZERO_RUNS }, { NULL, 0 } };
static const struct pcb_choice ch_guest[] = { { "process", PCB_GUEST_PROCESS }, { "kvm", PCB_GUEST_KVM }, { NULL, 0 } };
static const struct pcb_choice ch_pager[] = { { "thread", PCB_PAGER_THREAD }, { "process", PCB_PAGER_PROCESS }, { NULL, 0 } };
static const struct pcb_choice ch_installer[] = { { "auto", PCB_INSTALLER_AUTO }, { "inline", PCB_INSTALLER_INLINE },
						   { "thread", PCB_INSTALLER_THREAD }, { NULL, 0 } };
static const struct pcb_choice ch_transport[] = { { "tcp", PCB_PRECOPY_TCP }, { "memory", PCB_PRECOPY_MEMORY }, { NULL, 0 } };
static const struct pcb_choice ch_policy_end[] = {
	{ "auto", PCB_END_AUTO }, { "source", PCB_POLICY_SOURCE }, { "destination", PCB_POLICY_DEST }, { NULL, 0 },
};
static const struct pcb_choice ch_inflight[] = { { "wait", PCB_INFLIGHT_WAIT }, { "resend", PCB_INFLIGHT_RESEND }, { NULL, 0 } };
static const struct pcb_choice ch_replies[] = { { "auto", PCB_REPLIES_AUTO }, { "inline", PCB_REPLIES_INLINE },
						 { "thread", PCB_REPLIES_THREAD }, { "lanes", PCB_REPLIES_LANES }, { NULL, 0 } };
static const struct pcb_choice ch_source_image[] = { { "auto", PCB_SRC_IMAGE_AUTO }, { "memory", PCB_SRC_IMAGE_MEMORY },
						      { "generate", PCB_SRC_IMAGE_GENERATE }, { NULL, 0 } };
static const struct pcb_choice ch_source_send[] = { { "auto", PCB_SRC_SEND_AUTO }, { "writev", PCB_SRC_SEND_WRITEV },
						     { "splice", PCB_SRC_SEND_SPLICE }, { NULL, 0 } };
static const struct pcb_choice ch_final[] = { { "drop", PCB_PRECOPY_DROP }, { "resend", PCB_PRECOPY_RESEND }, { NULL, 0 } };

/* Entries list their fields in order: name, type, offset, size, default, min, max, help, choices, scope, category,
 * short name.  An option is in the scope of a command only if that command reads it: --help, the man page and the
 * parser all follow the scope, so an option listed for a command is one that changes what it does. */
const struct pcb_option pcb_options[] = {
	{ "mem", PCB_OPT_SIZE, OFF(mem), 0, "256M", 4096, 1e15, "guest memory size (K/M/G/T suffixes; multiple of 4 KiB)", NULL, MIG | SRC, "guest" },
	{ "policy", PCB_OPT_POLICY, OFF(policy), SZ(policy), "sequential", 0, 0, "pre-paging policy (see `pcbench list`), or a policy built as a shared object: ./path/to/policy.so (docs/writing-a-policy.md)", NULL, MIG, "guest" },
	{ "policy-end", PCB_OPT_CHOICE, OFF(policy_end), 0, "auto", 0, 0,
	  "where the policy runs: destination (the pager pulls batches it chooses), source (the source pushes the stream "
	  "it chooses, paced by the connection, told of each demand request), auto = the policy's own (`pcbench list`); "
	  "simulate: the same, modelled (source: batches pushed without a request, two queued at the source, paced by the link)",
	  ch_policy_end, MIG | SIM, "guest" },
	{ "workload", PCB_OPT_WORKLOAD, OFF(workload), SZ(workload), "seq", 0, 0, "guest access pattern (see `pcbench list`); pcbench source: an application workload (sqlite) whose database image it builds and serves", NULL, MIG | SRC, "guest" },
	{ "vcpus", PCB_OPT_UINT, OFF(vcpus), 0, "1", 1, 256, "guest threads (vCPUs)", NULL, MIG, "guest" },
	{ "seed", PCB_OPT_U64, OFF(seed), 0, "1", 0, 1.8446744073709552e19, "seed of the memory image and of the workload", NULL, MIG | SRC | SIM | FLOOR, "guest" },
	{ "zero-pages", PCB_OPT_DOUBLE, OFF(zero_pages), 0, "0.25", 0, 1, "fraction of all-zero pages in the image", NULL, MIG | SRC | SIM, "guest" },
	{ "zero-model", PCB_OPT_CHOICE, OFF(zero_model), 0, "runs", 0, 0,
	  "where the zero pages lie: runs (zero runs of 2^k pages, k uniform up to --zero-run-max, as the free blocks "
	  "of Linux's buddy allocator, between data runs; exactly --zero-pages of the pages) or uniform (each page zero "
	  "by a hash, independently); docs/metrics.md.  `pcbench dest` learns it from the source; `pcbench floor`: the image "
	  "of its pcb_zero rows", ch_zero_model,
	  MIG | SRC | SIM | FLOOR, "guest" },
	{ "zero-run-max", PCB_OPT_UINT, OFF(zero_run_max), 0, "1024", 1, 1u << 20,
	  "--zero-model=runs: the longest zero run in pages, a power of two (1024 = 4 MiB, Linux's largest buddy block)",
	  NULL, MIG | SRC | SIM | FLOOR, "guest" },
	{ "write-ratio", PCB_OPT_DOUBLE, OFF(write_ratio), 0, "0.2", 0, 1, "fraction of guest accesses that are writes", NULL, MIG, "guest" },
	{ "zipf-theta", PCB_OPT_DOUBLE, OFF(zipf_theta), 0, "0.99", 0.01, 0.999, "skew of the zipf workload", NULL, MIG, "guest" },
	{ "duration", PCB_OPT_DURATION, OFF(duration_ns), 0, "2s", 0, 1e13, "how long the guest runs (e.g. 500ms, 10s; 0 = until --ops)", NULL, MIG, "guest" },
	{ "ops", PCB_OPT_U64, OFF(ops), 0, "0", 0, 1e18, "stop each vCPU after this many accesses (0 = until --duration)", NULL, MIG, "guest" },
	{ "json", PCB_OPT_STR, OFF(json), SZ(json), "", 0, 0, "write the versioned JSON result to this file", NULL, MIG | SIM | FLOOR | PCB_CMD_IMAGE_STATS, "output" },
	{ "timeline", PCB_OPT_STR, OFF(timeline), SZ(timeline), "", 0, 0, "write every fault, install and first touch as CSV (t_us,event,page,detail)", NULL, MIG | SIM, "output" },
	{ "host", PCB_OPT_STR, OFF(host), SZ(host), "127.0.0.1", 0, 0, "address the forked source listens on", NULL, PCB_CMD_RUN, "network" },
	{ "port", PCB_OPT_UINT, OFF(port), 0, "0", 0, 65535, "source TCP port (0 = ephemeral)", NULL, PCB_CMD_RUN, "network" },
	{ "io-timeout", PCB_OPT_DURATION, OFF(io_timeout_ns), 0, "3s", 1e6, 1e12, "a source silent this long while pages are awaited = source lost (pcbench source: the whole-handshake deadline and the send timeout, 10s unless given)", NULL, MIG | SRC, "network" },
	{ "batch", PCB_OPT_UINT, OFF(batch_pages), 0, "64", 1, 4096, "pages per background batch", NULL, MIG | SIM, "pager" },
	{ "window", PCB_OPT_UINT, OFF(window), 0, "4", 1, 64, "background batches in flight", NULL, MIG | SIM, "pager" },
	{ "channels", PCB_OPT_UINT, OFF(channels), 0, "0", 0, 2,
	  "connections to the source: 2 = demand requests on their own connection, served before background work; "
	  "1 = one connection carries both, demand replies queue behind background data already sent (QEMU before "
	  "postcopy-preempt); 0 = what the policy's system uses (qemu: 1, or 2 with preempt=on; others 2); "
	  "not 1 with --page-size=2M", NULL, MIG | SIM, "pager" },
	{ "inflight", PCB_OPT_CHOICE, OFF(inflight), 0, "wait", 0, 0,
	  "a fault on a page already in flight in a background batch: wait (for the batch; every page crosses the wire "
	  "once, as QEMU and CRIU) or resend (ask for it again on the demand channel, whose reply may overtake the batch: "
	  "pages sent twice, results.pages.sent_twice)", ch_inflight, MIG, "pager" },
	{ "demand-replies", PCB_OPT_CHOICE, OFF(demand_replies), 0, "auto", 0, 0,
	  "who receives and installs demand replies: inline (the demand thread, between faults: poll() on the userfaultfd and "
	  "the demand socket), thread (a reply thread blocks on the demand socket and installs each reply as it arrives while "
	  "the demand thread blocks on the userfaultfd and sends requests: several requests outstanding, pipelined), lanes "
	  "(one lane per vCPU, 2-8 vCPUs: the region sliced into equal parts (fewer on a region of few pages), each registered on a userfaultfd of its own "
	  "and served by a thread with its own demand connection that requests, receives and installs each fault of its "
	  "slice, as Linux's KVM selftest gives each vCPU's slice a handler; also --install=copy, a policy without a fault "
	  "hook, --pager=thread); thread and lanes apply when only demand faults fill pages while the guest runs (no "
	  "background pull, two connections, 4 KiB pages, no --policy-end=source), else inline; auto = lanes for "
	  "--guest=kvm with 2-8 vCPUs where lanes apply, else thread for --guest=kvm with 2 or more vCPUs where it applies, "
	  "else inline; results.pager.demand_replies, demand_lanes", ch_replies, MIG, "pager" },
	{ "socket-buffer", PCB_OPT_SIZE, OFF(socket_buffer), 0, "4M", 0, 64 << 20,
	  "SO_SNDBUF and SO_RCVBUF of every connection (the kernel doubles it, capped by net.core.wmem_max/rmem_max); "
	  "0 = the kernel's autotuning.  With --channels=1 a demand reply queues behind what these buffers hold", NULL, MIG | SRC, "network" },
	{ "source-delay", PCB_OPT_DURATION, OFF(source_delay_ns), 0, "0", 0, 1e10, "delay the source adds before each demand reply (e.g. 200us)", NULL, PCB_CMD_RUN | SRC, "network" },
	{ "trace", PCB_OPT_CHOICE, OFF(trace), 0, "auto", 0, 0,
	  "kernel-side BPF fault histograms (page-fault and context-switch tracepoints): auto (when root and BPF work), on (fail if not), off", ch_auto_on_off, MIG, "trace" },
	{ "trace-usdt", PCB_OPT_CHOICE, OFF(trace_usdt), 0, "off", 0, 0,
	  "with tracing, also attach the pager's USDT probes (queueing / round trip / install breakdown; adds ~1 us per probe)", ch_on_off, MIG, "trace" },
	{ "trace-messages", PCB_OPT_CHOICE, OFF(trace_messages), 0, "auto", 0, 0,
	  "with tracing, also watch the pager read fault messages (syscalls:sys_exit_read) so the kernel's fault count is the pager's; it puts every syscall on the machine on the slow path (~1.3x fault latency in a one-CPU run): auto = on with --trace=on, off with --trace=auto", ch_auto_on_off, MIG, "trace" },
	{ "trace-events", PCB_OPT_STR, OFF(trace_events), SZ(trace_events), "", 0, 0,
	  "with tracing, also stream every blocked fault (column delivered: its message was read) from the kernel to this CSV file", NULL, MIG, "trace" },
	{ "policy-opt", PCB_OPT_STR, OFF(policy_opt), SZ(policy_opt), "", 0, 0,
	  "policy knobs key=value[,key=value] (each policy's keys: `pcbench list`)", NULL, MIG | SIM, "guest" },
	{ "workload-opt", PCB_OPT_STR, OFF(workload_opt), SZ(workload_opt), "", 0, 0,
	  "workload knobs key=value[,key=value] (each workload's keys: `pcbench list`)", NULL, MIG | SRC, "guest" },
	{ "record", PCB_OPT_STR, OFF(record), SZ(record), "", 0, 0,
	  "write the guest's access sequence to this file (binary; plain text if it ends in .txt) for --workload=trace", NULL, MIG, "output" },
	{ "replay", PCB_OPT_STR, OFF(replay), SZ(replay), "", 0, 0,
	  "--policy=replay: access trace written by --record whose first-touch order is pulled first", NULL, MIG | SIM, "guest" },
	{ "bucket-ms", PCB_OPT_UINT, OFF(bucket_ms), 0, "10", 1, 60000, "guest progress: ops counted per bucket of this many ms", NULL, MIG, "output" },
	{ "progress-csv", PCB_OPT_STR, OFF(progress_csv), SZ(progress_csv), "", 0, 0,
	  "write ops per bucket per vCPU as CSV t_ms,vcpu,ops (default: next to --json as NAME.progress.csv)", NULL, MIG, "output" },
	{ "baseline", PCB_OPT_STR, OFF(baseline), SZ(baseline), "none", 0, 0,
	  "report time back to 95% and lost work against a local run: `run` (run it first, in this invocation) or the "
	  "progress CSV of an earlier --policy=local run of the same guest", NULL, MIG, "output" },
	{ "install", PCB_OPT_INSTALL, OFF(install), SZ(install), "copy", 0, 0,
	  "how pages enter the guest: copy (UFFDIO_COPY), move (background pages assembled in 2 MiB staging chunks, zero pages included, UFFDIO_MOVE of whole chunks), "
	  "continue (memfd guest, pages received into its page cache, UFFDIO_CONTINUE)", NULL, MIG, "pager" },
	{ "page-size", PCB_OPT_CHOICE, OFF(page_size), 0, "4K", 0, 0,
	  "guest page size: 4K, or 2M (hugetlb region, each fault installs 2 MiB with one UFFDIO_COPY; needs reserved "
	  "huge pages, --install=copy, --guest=process, --mem a multiple of 2M)", ch_page_size, MIG, "guest" },
	{ "install-batch", PCB_OPT_UINT, OFF(install_batch), 0, "0", 0, 1024,
	  "max background pages per install ioctl (0 = the path's default: 128, move 512 = one whole 2 MiB chunk, "
	  "which the kernel moves as one huge-page mapping; 1 = one ioctl per page, each waking)", NULL, MIG, "pager" },
	{ "installer", PCB_OPT_CHOICE, OFF(installer), 0, "auto", 0, 0,
	  "who issues the background install ioctls: inline (the background thread, right after receiving each job into "
	  "one staging slot that stays in its CPU's cache: receive then install in one loop, as QEMU's postcopy listen "
	  "thread and CRIU's lazy-pages daemon do) or thread (an installer thread, 4 staging slots: receiving the next "
	  "job overlaps installing this one, at the cost of a hand-off and a wake-up per job; --pin=install=C places it); "
	  "auto = inline where an installer thread would have no CPU of its own (--pin puts background and install on "
	  "the same CPU; one CPU online; two CPUs online and --pin places the background thread but not the installer), "
	  "else thread; always thread on one shared connection (--channels=1: the background "
	  "thread also receives the demand replies, which would wait behind each install); results.pager.install.installer",
	  ch_installer, MIG, "pager" },
	{ "zero-inline", PCB_OPT_UINT, OFF(zero_inline), 0, "16", 0, PCB_MAX_RUN_PAGES,
	  "--install=copy: a run of up to this many zero pages between data pages is installed with the data by one "
	  "UFFDIO_COPY from zeroed staging pages (each allocates 4 KiB in the guest); a longer run with UFFDIO_ZEROPAGE "
	  "(the shared zero page); 0 = every zero page with UFFDIO_ZEROPAGE.  continue puts zero pages in the page cache "
	  "either way and always installs them with the data; move's chunks hold them", NULL, MIG, "pager" },
	{ "pin", PCB_OPT_PIN, OFF(pin), SZ(pin), "none", 0, 0,
	  "thread placement: none, same (all on CPU 0), split (guest, demand CPU 0; background receive, install, source CPU 1), "
	  "or guest=C,demand=C,background=C,source=C,install=C", NULL, MIG, "pager" },
	{ "guest", PCB_OPT_CHOICE, OFF(guest), 0, "process", 0, 0,
	  "process: vCPUs are threads of pcbench; kvm: vCPUs run the workload inside a minimal KVM VM whose memory is the region",
	  ch_guest, MIG, "guest" },
	{ "pager", PCB_OPT_CHOICE, OFF(pager), 0, "thread", 0, 0,
	  "thread: the pager threads run in pcbench's process; process: in a process of their own, given the userfaultfd "
	  "(and the memfd) over a unix socket (SCM_RIGHTS); not with --install=move", ch_pager, MIG, "pager" },
	{ "link", PCB_OPT_STR, OFF(link), SZ(link), "", 0, 0, "emulate a link BANDWIDTH[,RTT] on both channels, e.g. 10gbit,50us or 1gbit,500us (calibrated end to end; simulate: the modelled link, default this machine's loopback)", NULL, MIG | SIM, "network" },
	{ "reconnect-timeout", PCB_OPT_DURATION, OFF(reconnect_timeout_ns), 0, "0", 0, 1e13, "when the source connection drops: pause and reconnect for this long (0 = fail at once)", NULL, MIG, "network" },
	{ "auth-key-file", PCB_OPT_STR, OFF(auth_key_file), SZ(auth_key_file), "", 0, 0, "shared secret (16..1024 bytes): source and destination authenticate each other (HMAC-SHA-256) and every frame (AES-GCM tag; docs/security.md)", NULL, MIG | SRC, "network" },
	{ "source", PCB_OPT_STR, OFF(source), SZ(source), "", 0, 0, "pcbench dest: ADDRESS:PORT of a running `pcbench source`", NULL, MIG, "network" },
	{ "listen", PCB_OPT_STR, OFF(listen), SZ(listen), "127.0.0.1:7600", 0, 0, "pcbench source: ADDRESS:PORT to listen on (port 0 = ephemeral, printed)", NULL, SRC, "network" },
	{ "sessions", PCB_OPT_UINT, OFF(sessions), 0, "1", 0, 1000000, "pcbench source: exit after this many completed migrations (0 = serve until killed)", NULL, SRC, "network" },
	{ "precopy", PCB_OPT_DURATION, OFF(precopy_ns), 0, "0", 0, 3.6e12,
	  "hybrid: the guest first runs at the source this long while pages are pre-copied (written ones re-sent), then post-copy",
	  NULL, PCB_CMD_RUN, "pager" },
	{ "precopy-transport", PCB_OPT_CHOICE, OFF(precopy_transport), 0, "tcp", 0, 0,
	  "how pre-copy moves pages: tcp (a third connection to the source, through --link) or memory (straight from the source's memory)",
	  ch_transport, PCB_CMD_RUN, "pager" },
	{ "precopy-final", PCB_OPT_CHOICE, OFF(precopy_final), 0, "drop", 0, 0,
	  "pages written since their last pre-copy at switch-over: drop (post-copy fetches them) or resend (stop-and-copy, vCPUs stopped)",
	  ch_final, PCB_CMD_RUN, "pager" },
	{ "source-image", PCB_OPT_CHOICE, OFF(source_image), 0, "auto", 0, 0,
	  "how the source holds the seed's image: memory (built once before the destination connects, pages copied "
	  "from it as a real source reads guest RAM), generate (each page generated from the seed as it is sent: "
	  "no memory, the generation costs the source's CPU), auto = memory when it and the destination's copy fit "
	  "in half of MemAvailable; the JSON records the choice and the build time (docs/metrics.md)",
	  ch_source_image, PCB_CMD_RUN | SRC | FLOOR, "network" },
	{ "source-send", PCB_OPT_CHOICE, OFF(source_send), 0, "auto", 0, 0,
	  "how the source writes the pages of a memory image: splice (vmsplice into a pipe, splice to the socket: pages "
	  "leave by reference, as CRIU's page server sends them), writev (the kernel copies each page, as QEMU's "
	  "migration stream does); auto = writev for --policy=qemu, else splice; pages the guest may still write "
	  "(--precopy) and generated ones always go by writev; the JSON records the choice (docs/metrics.md)",
	  ch_source_send, PCB_CMD_RUN | SRC | FLOOR, "network" },
	{ "image", PCB_OPT_STR, OFF(image), SZ(image), "", 0, 0,
	  "serve this raw memory image file (a process dump from `pcbench image dump`, a VM snapshot's memory file) "
	  "instead of the generated image: --mem is its size; pages are verified by the bytes they arrived with "
	  "(pcbench run: the forked source; pcbench source)", NULL, PCB_CMD_RUN | SRC, "guest" },
	{ "verbose", PCB_OPT_COUNT, OFF(verbose), 0, "", 0, 9,
	  "more log on stderr (run, dest: tracing and set-up decisions, given twice also libbpf's debug log; source: "
	  "every refused connection and what was served; bench, analyze: the runs a result directory holds)", NULL,
	  MIG | SRC | PCB_CMD_BENCH | PCB_CMD_ANALYZE, "output", 'v' },

	/* pcbench simulate (sim/simcmd.c; model in sim/sim.c) */
	{ "trace", PCB_OPT_STR, OFF(sim.trace), SZ(sim.trace), "", 1, 0, "access trace to replay (from --record, binary or .txt; required)", NULL, SIM, "guest" },
	{ "policy", PCB_OPT_STR, OFF(sim.policy), SZ(sim.policy), "sequential", 0, 0,
	  "policy (see `pcbench list`; every registered one but local), a comma list, or all: one run each, compared in a table", NULL, SIM, "guest" },
	{ "mem", PCB_OPT_SIZE, OFF(sim.mem), 0, "0", 0, 1e15, "guest size (0 = the trace's page count)", NULL, SIM, "guest" },
	{ "think", PCB_OPT_STR, OFF(sim.think), SZ(sim.think), "recorded", 0, 0,
	  "guest time before each access: recorded (the gap to the vCPU's previous record), schedule (each access at its "
	  "recorded time, or when the previous one completed if later) or a duration", NULL, SIM, "model" },
	{ "fault-cost", PCB_OPT_DURATION, OFF(sim.fault_ns), 0, "0", 0, 1e10, "fault -> demand request sent (uffd message read, demand thread awake)", NULL, SIM, "model" },
	{ "jitter", PCB_OPT_DURATION, OFF(sim.jitter_ns), 0, "0", 0, 1e10,
	  "mean of a random (exponential, seeded) extra delay of a demand request while background batches are in flight (host contention; 0 = ideal host)", NULL, SIM, "model" },
	{ "demand-cost", PCB_OPT_DURATION, OFF(sim.demand_ns), 0, "35us", 0, 1e10, "demand reply received -> vCPU running (UFFDIO_COPY, cross-CPU wake-up)", NULL, SIM, "model" },
	{ "demand-zero-cost", PCB_OPT_DURATION, OFF(sim.demand_zero_ns), 0, "33800ns", 0, 1e10, "the same for a zero page (UFFDIO_ZEROPAGE)", NULL, SIM, "model" },
	{ "bg-cost", PCB_OPT_DURATION, OFF(sim.bg_ns), 0, "1030ns", 0, 1e10, "background install per data page (batched UFFDIO_COPY)", NULL, SIM, "model" },
	{ "bg-zero-cost", PCB_OPT_DURATION, OFF(sim.bg_zero_ns), 0, "90ns", 0, 1e10, "background install per zero page (batched UFFDIO_ZEROPAGE)", NULL, SIM, "model" },
	{ "run-pages", PCB_OPT_UINT_AUTO, OFF(sim.run_pages), 0, "auto", 1, PCB_MAX_RUN_PAGES,
	  "data pages per RUN frame (default as the live source: 16 with a limited --link bandwidth or one channel, else 128)", NULL, SIM, "model" },

	/* pcbench floor (floor/floor.c) */
	{ "faults", PCB_OPT_U64, OFF(floor.faults), 0, "40000", 100, 10000000, "demand faults per variant and placement", NULL, FLOOR, "floor" },
	{ "rounds", PCB_OPT_UINT, OFF(floor.rounds), 0, "16", 1, 100, "interleaved rounds the faults are split into; ratios are paired by round", NULL, FLOOR, "floor" },
	{ "bulk", PCB_OPT_SIZE, OFF(floor.bulk), 0, "128M", 1 << 20, 64.0 * (1 << 30), "bytes pulled per bulk measurement (a multiple of 1 MiB)", NULL, FLOOR, "floor" },
	{ "bulk-reps", PCB_OPT_UINT, OFF(floor.bulk_reps), 0, "5", 1, 16, "repetitions of every bulk measurement, interleaved; medians and ratios paired by repetition", NULL, FLOOR, "floor" },
	{ "batch", PCB_OPT_UINT, OFF(floor.batch), 0, "1024", 1, PCB_MAX_BATCH_PAGES, "pcbench background request batch (pages) for the bulk runs", NULL, FLOOR, "floor" },
	{ "window", PCB_OPT_UINT, OFF(floor.window), 0, "4", 1, 64, "pcbench background batches in flight for the bulk runs", NULL, FLOOR, "floor" },
	{ "link-rates", PCB_OPT_STR, OFF(floor.link_rates), SZ(floor.link_rates), "1gbit,2.5gbit,5gbit,10gbit", 1, 0,
	  "link rates for the emulated-link pull, comma-separated, e.g. 1gbit,2.5gbit,500mbit (10kbit..400gbit; up to 8)", NULL, FLOOR, "floor" },
	{ "link-rtt", PCB_OPT_DURATION, OFF(floor.link_rtt_ns), 0, "200us", 0, 1e9, "round-trip time of the emulated link (up to 1s; calibrated end to end)", NULL, FLOOR, "floor" },
	{ "bulk-variants", PCB_OPT_STR, OFF(floor.bulk_variants), SZ(floor.bulk_variants), "all", 1, 0,
	  "bulk rows measured: all, or VARIANT[:INSTALL] comma-separated (transport, source_gen, install, bare_copy, bare_mem, bare_splice, bare_pipe, bare_pipe_splice, "
	  "pcbench, pcb_proc, pcb_zero, pcb_mac, pcb_gen, pcb_thread, pcb_writev; e.g. install:copy = the copy path's installs alone, as bench/scale.sh measures "
	  "the floor of each size); with a subset the bulk targets are not judged", NULL, FLOOR, "floor" },
	{ "no-bulk", PCB_OPT_FLAG, OFF(floor.no_bulk), 0, "", 0, 0, "skip the loopback bulk section", NULL, FLOOR, "floor" },
	{ "no-demand", PCB_OPT_FLAG, OFF(floor.no_demand), 0, "", 0, 0, "skip the demand-fault section", NULL, FLOOR, "floor" },
	{ "no-link", PCB_OPT_FLAG, OFF(floor.no_link), 0, "", 0, 0, "skip the emulated-link pull", NULL, FLOOR, "floor" },
	{ "kvm-vcpus", PCB_OPT_STR, OFF(floor.kvm_vcpus), SZ(floor.kvm_vcpus), "1,2", 1, 0,
	  "vCPU counts for KVM demand paging, comma-separated (each 1..8, up to 4 counts)", NULL, FLOOR, "floor" },
	{ "kvm-mem", PCB_OPT_SIZE, OFF(floor.kvm_mem), 0, "64M", 1 << 20, 16.0 * (1 << 30), "memory each vCPU faults in (KVM demand paging)", NULL, FLOOR, "floor" },
	{ "kvm-reps", PCB_OPT_UINT, OFF(floor.kvm_reps), 0, "3", 1, 16, "repetitions of each KVM measurement, bare and pcbench back to back", NULL, FLOOR, "floor" },
	{ "no-kvm", PCB_OPT_FLAG, OFF(floor.no_kvm), 0, "", 0, 0, "skip KVM demand paging (without a usable /dev/kvm it is not measured and says why: results.kvm_demand_paging_skipped)", NULL, FLOOR, "floor" },

	/* pcbench bench (bench/bench.c) */
	{ "out", PCB_OPT_STR, OFF(bench.out), SZ(bench.out), "", 1, 0, "use (or resume) exactly this directory", NULL, PCB_CMD_BENCH, "bench" },
	{ "results", PCB_OPT_STR, OFF(bench.results), SZ(bench.results), "results", 1, 0, "parent directory of new result directories", NULL, PCB_CMD_BENCH, "bench" },
	{ "shard", PCB_OPT_STR, OFF(bench.shard), SZ(bench.shard), "", 0, 0,
	  "I/N: run only share I of N (the runs whose index is I-1 modulo N; run ids unchanged), in "
	  "PARENT/<name>-shardIofN-<date>-<rev>/; for job arrays (docs/bench.md)", NULL, PCB_CMD_BENCH, "bench" },
	{ "out", PCB_OPT_STR, OFF(bench.out), SZ(bench.out), "", 1, 0,
	  "merge the result directories of the shards of one experiment (same job file; every run from exactly one "
	  "of them) into this directory, then analyse it", NULL, PCB_CMD_ANALYZE, "bench" },
	{ "fresh", PCB_OPT_FLAG, OFF(bench.fresh), 0, "", 0, 0, "always start a new directory", NULL, PCB_CMD_BENCH, "bench" },
	{ "dry-run", PCB_OPT_FLAG, OFF(bench.dry_run), 0, "", 0, 0, "print the runs and exit", NULL, PCB_CMD_BENCH, "bench" },

	/* pcbench image stats | dump (cli/imagecmd.c) */
	{ "sample", PCB_OPT_U64, OFF(image_cmd.sample), 0, "262144", 0, 1e15,
	  "pages compressed one by one for the per-page zlib figure, evenly spaced (0 = all)", NULL, PCB_CMD_IMAGE_STATS, "image" },
	{ "pid", PCB_OPT_U64, OFF(image_cmd.pid), 0, "", 1, 4194303, "the process whose memory is dumped (required)", NULL,
	  PCB_CMD_IMAGE_DUMP, "image" },
	{ "out", PCB_OPT_STR, OFF(image_cmd.out), SZ(image_cmd.out), "", 1, 0,
	  "the image file to write (required); the list of regions goes to FILE.maps", NULL, PCB_CMD_IMAGE_DUMP, "image" },
	{ "max", PCB_OPT_SIZE, OFF(image_cmd.max), 0, "4G", 4096, 1e15, "refuse a process with more memory than this", NULL,
	  PCB_CMD_IMAGE_DUMP, "image" },
	{ "no-stop", PCB_OPT_FLAG, OFF(image_cmd.no_stop), 0, "", 0, 0,
	  "do not stop the process (SIGSTOP) for the copy: it keeps running, so the image may be inconsistent", NULL, PCB_CMD_IMAGE_DUMP, "image" },
	{ NULL, 0, 0, 0, NULL, 0, 0, NULL, NULL, 0, NULL, 0 },
};

static const char exit_codes_run[] =
	"0 ok; 1 pages corrupt or missing; 64 bad option; 69 kernel lacks a feature; 70 internal error; "
	"71 system call failed; 74 source lost; 76 protocol error; 77 no privilege or authentication refused.";

const struct pcb_command pcb_commands[] = {
	{ "run", PCB_CMD_RUN, "[run] [OPTIONS]", "run one post-copy migration (source forked locally)",
	  "Runs a real post-copy migration on this machine: a source page server process\n"
	  "serves the guest image over TCP; the destination registers the guest region with\n"
	  "userfaultfd, serves faults on demand and pulls the rest in the background as the\n"
	  "policy decides; every page is verified against the source at the end.",
	  0, exit_codes_run },
	{ "source", PCB_CMD_SOURCE, "source [--listen=ADDR:PORT] [--mem --seed --zero-pages --auth-key-file --sessions --image=FILE | --workload=sqlite]",
	  "serve an image (generated, or a raw memory image file) to destinations on other hosts",
	  "Serves the guest image of --mem, --seed and --zero-pages (or the raw memory image file of --image,\n"
	  "or the database image an application workload builds from --mem, --seed and --workload-opt)\n"
	  "to `pcbench dest` on another host.",
	  0, exit_codes_run },
	{ "dest", PCB_CMD_DEST, "dest --source=ADDR:PORT [OPTIONS]",
	  "migrate from a running source (image config fetched from it)",
	  "Runs the destination side of a migration from a running `pcbench source`; the image's\n"
	  "size, seed and zero fraction are fetched from it (a different value given here is refused).",
	  0, exit_codes_run },
	{ "floor", PCB_CMD_FLOOR, "floor [OPTIONS]", "pager floor benchmark: bare userfaultfd vs pcbench",
	  "Measures the floor a pager can reach on this machine and pcbench against it, in one run:\n"
	  "bare userfaultfd round trip (handler thread, and handler process given the uffd over a\n"
	  "unix socket), bare end to end over TCP and a unix socket (minimal page\n"
	  "server), and pcbench's pager for the same faults, each with the faulting thread, handler\n"
	  "and server on one CPU (same) and split over two (cross); then bulk background pull:\n"
	  "the TCP transport alone, a bare batched-UFFDIO_COPY receiver, and pcbench with each\n"
	  "install path (copy, move, continue; batched and unbatched), and again pulling the\n"
	  "default image (25% zero pages placed by --zero-model: pcb_zero), paired with the zero-free pull; then the same pcbench pull\n"
	  "over an emulated link (--link=RATE,RTT: the source's token bucket and delay line) at each\n"
	  "of --link-rates, against the configured rate (the rate counts frame bytes: 24-byte header +\n"
	  "payload), next to a loopback pull (no emulation) and the delay line alone (unlimited);\n"
	  "then KVM demand paging: pcbench's KVM guest faulting every page in over TCP against a bare\n"
	  "handler per vCPU copying from local memory (as Linux's KVM selftest demand_paging_test) and\n"
	  "against those handlers fetching each page over TCP from a bare server, with 1 vCPU also with\n"
	  "every thread of all three on CPU 0.\n"
	  "Prints a table with the pcbench/bare and pcbench/link ratios and writes it as JSON with\n"
	  "--json.",
	  0, "0 ok (a missed target is reported, not an error); 1 a pcbench run failed its page verification; 64 bad option; "
	  "70 internal error; 71 system call failed." },
	{ "bench", PCB_CMD_BENCH, "bench JOBFILE [OPTIONS]", "run an experiment matrix (configs/*.conf)",
	  "Runs the experiment matrix of JOBFILE (format: configs/README.md): policies x workloads\n"
	  "x links x repetitions, one `pcbench run` child per run, each verified end to end.  Results go\n"
	  "to PARENT/<name>-<UTC date>-<git revision>/ (PARENT: --results), job.conf, system.json,\n"
	  "manifest.json, runs/<run>.json, .timeline.csv and .log, then results.csv (tidy), summary.csv\n"
	  "and plotdata/; `make plots RESULTS=DIR` adds summary.md, summary.tex, stats.csv, figures/.\n"
	  "An interrupted experiment is resumed by running the same command again: the most recent\n"
	  "incomplete directory with the same job file and git revision is reused and runs already\n"
	  "completed are skipped.  A complete directory is never reused: running a finished\n"
	  "experiment again starts a new directory.\n"
	  "A job whose options name `source = HOST:PORT` migrates every run from that long-running\n"
	  "`pcbench source` (this host is the destination: `pcbench dest`).",
	  1, "0 all runs ok; if a run failed, the exit code of the first failed run (124: killed after "
	  "run_timeout; 128+N: killed by signal N); 64 bad option; 65 bad job file; 71 I/O error; "
	  "130 interrupted (resume by running the same command)." },
	{ "analyze", PCB_CMD_ANALYZE, "analyze DIR | --out=DIR SHARD_DIR...", "tidy CSV, summary tables and plot data of a bench directory",
	  "Regenerates results.csv, summary.csv and plotdata/ from the results directory DIR of\n"
	  "`pcbench bench` without running anything; with --out=DIR it first merges the result\n"
	  "directories of the shards of one experiment into DIR.  summary.md, summary.tex, stats.csv\n"
	  "and the figures: analysis/plots.sh DIR (make plots RESULTS=DIR).",
	  256, "0 ok; 64 bad option or not a directory; 65 a result file is not as pcbench writes it; 71 I/O error." },
	{ "simulate", PCB_CMD_SIMULATE, "simulate --trace=FILE [--policy=P] [--policy-opt=K=V,...] [--link=BW[,RTT]] [OPTIONS]",
	  "replay an access trace through a policy offline (modelled link)",
	  "Replays a recorded access trace through a registered policy with a modelled link\n"
	  "(discrete-event simulation, no kernel in the loop) and reports the metrics of a\n"
	  "live run: faults, fault latency, blocktime, prefetch hit rate/accuracy/lead time,\n"
	  "migration time.  Model: docs/design.md \"Offline policy simulator\"; measured agreement with\n"
	  "live runs: docs/results/2026-11-26-simulator-agreement.md.",
	  0, "0 ok; 64 bad option, policy or link; 65 unreadable or invalid trace; "
	  "70 internal error (the model got stuck); 71 system call failed." },
	{ "image stats", PCB_CMD_IMAGE_STATS, "image stats FILE [--json=OUT] [--sample=PAGES]",
	  "a raw memory image's zero pages, runs, duplicates and compressibility",
	  "What decides how migrating a raw memory image behaves: zero pages and the lengths of zero\n"
	  "and data runs (a zero page costs a header; a run of data pages one frame), pages duplicating\n"
	  "an earlier page (xxh3-64), and compressibility: zlib level 1 of each non-zero page on its own\n"
	  "(--sample bounds the pages compressed) and of the first 256 MiB as one stream.  A FILE serves\n"
	  "as the source's memory with `pcbench source --image=FILE` or `pcbench run --image=FILE`.",
	  1, "0 ok; 64 bad option, no FILE, or FILE cannot be opened; 65 FILE is not a whole number of pages; "
	  "71 I/O error or out of memory." },
	{ "image dump", PCB_CMD_IMAGE_DUMP, "image dump --pid=PID --out=FILE [--no-stop] [--max=SIZE]",
	  "dump a running process's memory into an image file",
	  "Writes the anonymous private writable memory of a running process (heap, stack, anonymous\n"
	  "mappings, from /proc/PID/maps, read through /proc/PID/mem; root or ptrace rights) to FILE,\n"
	  "regions back to back, and their list to FILE.maps.  The process is stopped (SIGSTOP) for the\n"
	  "copy and continued after unless --no-stop.  Pages that cannot be read are written as zero\n"
	  "and counted.",
	  0, "0 ok; 64 bad option or no such process; 65 the process is larger than --max; 71 the file cannot be "
	  "written; 77 no permission to read the process." },
	{ NULL, 0, NULL, NULL, NULL, 0, NULL },
};
#pragma GCC diagnostic pop

static bool in_scope(const struct pcb_option *o, enum pcb_cmd cmd) { return (o->scope & (unsigned)cmd) != 0; }
static bool takes_value(const struct pcb_option *o) { return o->type != PCB_OPT_FLAG && o->type != PCB_OPT_COUNT; }

const struct pcb_command *pcb_command_find(enum pcb_cmd cmd)
{
	for (const struct pcb_command *c = pcb_commands; c->name; c++)
		if (c->cmd == cmd)
			return c;
	return NULL;
}

static const struct pcb_option *find_opt(enum pcb_cmd cmd, const char *name)
{
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (in_scope(o, cmd) && !strcmp(o->name, name))
			return o;
	return NULL;
}

/* "a|b|c" */
static void choice_list(const struct pcb_choice *ch, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (; ch && ch->name && n < len; ch++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "|" : "", ch->name);
}

static const char *choice_name(const struct pcb_option *o, int value)
{
	for (const struct pcb_choice *c = o->choices; c && c->name; c++)
		if (c->value == value)
			return c->name;
	return "?";
}

const char *pcb_choice_name(const char *option, int value)
{
	const struct pcb_option *o = find_opt(PCB_CMD_RUN, option);
	return o && o->type == PCB_OPT_CHOICE ? choice_name(o, value) : "?";
}

static int set_size(const struct pcb_option *o, const char *val, uint64_t *out, char *why, size_t whylen)
{
	uint64_t u;
	char lo[32], hi[32];
	if (pcb_parse_size(val, &u) < 0) {
		snprintf(why, whylen, "invalid value for --%s: '%s' (want a size such as 256M or 4G)", o->name, val);
		return -1;
	}
	if ((double)u < o->min || (double)u > o->max) {
		snprintf(why, whylen, "invalid value for --%s: '%s' (must be from %s to %s)", o->name, val,
			 pcb_fmt_size((uint64_t)o->min, lo, sizeof(lo)), pcb_fmt_size((uint64_t)o->max, hi, sizeof(hi)));
		return -1;
	}
	if (u % 4096) {
		snprintf(why, whylen, "invalid value for --%s: '%s' (must be a multiple of 4 KiB)", o->name, val);
		return -1;
	}
	*out = u;
	return 0;
}

static int set_number(const struct pcb_option *o, const char *val, char *base, char *why, size_t whylen)
{
	uint64_t u;
	double d;
	switch (o->type) {
	case PCB_OPT_UINT_AUTO:
		if (!strcmp(val, "auto")) {
			*(unsigned *)base = 0;
			return 0;
		}
		/* fall through */
	case PCB_OPT_UINT:
	case PCB_OPT_U64:
		if (pcb_parse_u64(val, &u) < 0 || (double)u < o->min || (double)u > o->max) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want %san integer from %.0f to %.0f)", o->name, val,
				 o->type == PCB_OPT_UINT_AUTO ? "auto or " : "", o->min, o->max);
			return -1;
		}
		if (o->type == PCB_OPT_U64)
			*(uint64_t *)base = u;
		else
			*(unsigned *)base = (unsigned)u;
		return 0;
	case PCB_OPT_DOUBLE:
		if (pcb_parse_double(val, &d) < 0 || d < o->min || d > o->max) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want a number from %g to %g)", o->name, val, o->min, o->max);
			return -1;
		}
		*(double *)base = d;
		return 0;
	case PCB_OPT_DURATION:
		if (pcb_parse_duration(val, &u) < 0 || (double)u < o->min || (double)u > o->max) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want a duration such as 500ms, 2s, 200us)", o->name, val);
			return -1;
		}
		*(uint64_t *)base = u;
		return 0;
	case PCB_OPT_SIZE:
		return set_size(o, val, (uint64_t *)base, why, whylen);
	default:
		return -1;
	}
}

static int set_choice(const struct pcb_option *o, const char *val, char *base, char *why, size_t whylen)
{
	for (const struct pcb_choice *c = o->choices; c && c->name; c++)
		if (!strcmp(c->name, val)) {
			*(int *)base = c->value;
			return 0;
		}
	char list[128];
	choice_list(o->choices, list, sizeof(list));
	snprintf(why, whylen, "invalid value for --%s: '%s' (want one of %s)", o->name, val, list);
	return -1;
}

/* "copy|move|continue": the registered install paths */
static void install_names(char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	for (unsigned i = 0; pcb_install_paths[i] && n < len; i++)
		if (pcb_install_find(pcb_install_paths[i]->name, false) == pcb_install_paths[i])
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "|" : "", pcb_install_paths[i]->name);
}

/* strings, and names checked against a registry */
static int set_string(const struct pcb_option *o, const char *val, char *base, char *why, size_t whylen)
{
	struct pcb_pin pin;
	if (strlen(val) >= o->size) {
		snprintf(why, whylen, "invalid value for --%s: too long (max %zu characters)", o->name, o->size - 1);
		return -1;
	}
	if (o->min > 0 && !val[0]) {
		snprintf(why, whylen, "invalid value for --%s: '' (must not be empty)", o->name);
		return -1;
	}
	if (o->type == PCB_OPT_POLICY && !pcb_policy_resolve(val, why, whylen))
		return -1;
	if (o->type == PCB_OPT_WORKLOAD && !pcb_workload_find(val)) {
		snprintf(why, whylen, "invalid value for --%s: unknown workload '%s' (see `pcbench list`)", o->name, val);
		return -1;
	}
	if (o->type == PCB_OPT_INSTALL && !pcb_install_find(val, false)) {
		char list[128];
		install_names(list, sizeof(list));
		snprintf(why, whylen, "invalid value for --%s: '%s' (want one of %s)", o->name, val, list);
		return -1;
	}
	if (o->type == PCB_OPT_PIN && pcb_pin_parse(val, &pin, why, whylen) < 0)
		return -1;
	snprintf(base, o->size, "%s", val);
	return 0;
}

static int set_opt(struct pcb_config *cfg, const struct pcb_option *o, const char *val, char *why, size_t whylen)
{
	char *base = (char *)cfg + o->off;
	switch (o->type) {
	case PCB_OPT_STR:
	case PCB_OPT_POLICY:
	case PCB_OPT_WORKLOAD:
	case PCB_OPT_PIN:
	case PCB_OPT_INSTALL:
		return set_string(o, val, base, why, whylen);
	case PCB_OPT_CHOICE:
		return set_choice(o, val, base, why, whylen);
	case PCB_OPT_FLAG:
		*(bool *)base = val[0] != 0;
		return 0;
	case PCB_OPT_COUNT:     /* set by name: "" = 0, else a count; on the command line each -v adds one */
		if (!val[0]) {
			*(unsigned *)base = 0;
			return 0;
		}
		return set_number(&(struct pcb_option){ .name = o->name, .type = PCB_OPT_UINT, .min = o->min, .max = o->max },
				  val, base, why, whylen);
	default:
		if (set_number(o, val, base, why, whylen) < 0)
			return -1;
		if (base == (char *)&cfg->zero_run_max && (cfg->zero_run_max & (cfg->zero_run_max - 1))) {
			snprintf(why, whylen, "invalid value for --%s: '%s' (want a power of two)", o->name, val);
			return -1;
		}
		return 0;
	}
}

int pcb_cmd_set(enum pcb_cmd cmd, struct pcb_config *cfg, const char *name, const char *val, char *why, size_t whylen)
{
	const struct pcb_option *o = find_opt(cmd, name);
	if (!o) {
		snprintf(why, whylen, "unknown option --%s (see --help)", name);
		return -1;
	}
	return set_opt(cfg, o, val, why, whylen);
}

int pcb_config_set(struct pcb_config *cfg, const char *name, const char *val, char *why, size_t whylen)
{
	return pcb_cmd_set(PCB_CMD_RUN, cfg, name, val, why, whylen);
}

void pcb_cmd_defaults(enum pcb_cmd cmd, struct pcb_config *cfg)
{
	char why[256];
	memset(cfg, 0, sizeof(*cfg));
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (in_scope(o, cmd) && o->def[0] && set_opt(cfg, o, o->def, why, sizeof(why)) < 0) {   /* "": zero */
			/* a broken default is a programming error: fail loudly */
			fprintf(stderr, "pcbench: internal error: default of --%s: %s\n", o->name, why);
			abort();
		}
}

void pcb_config_defaults(struct pcb_config *cfg) { pcb_cmd_defaults(PCB_CMD_RUN, cfg); }

/* ---- --help and the man page ------------------------------------------------------------ */

static const char *shown_default(const struct pcb_option *o)
{
	return !takes_value(o) ? "off" : o->def[0] ? o->def : "none";
}

static void option_lhs(const struct pcb_option *o, char *buf, size_t len)
{
	char sh[8] = "";
	if (o->short_name)
		snprintf(sh, sizeof(sh), "-%c, ", o->short_name);
	snprintf(buf, len, takes_value(o) ? "%s--%s=VALUE" : "%s--%s", sh, o->name);
}

static void usage_lines(FILE *fp, enum pcb_cmd only)
{
	bool first = true;
	for (const struct pcb_command *c = pcb_commands; c->name; c++) {
		if (only && c->cmd != only)
			continue;
		fprintf(fp, "%s pcbench %s\n", first ? "usage:" : "      ", c->usage);
		if (!only)
			fprintf(fp, "                                     %s\n", c->summary);
		first = false;
	}
	if (!only) {
		fprintf(fp, "       pcbench list\n                                     list policies and workloads\n");
		fprintf(fp, "       pcbench --man\n                                     print the man page pcbench(1)\n");
		fprintf(fp, "       pcbench --version\n");
	}
}

void pcb_cmd_help(enum pcb_cmd cmd, FILE *fp)
{
	const struct pcb_command *c = pcb_command_find(cmd);
	usage_lines(fp, cmd == PCB_CMD_RUN ? 0 : cmd);
	fprintf(fp, "\n%s\n\nOptions (default in brackets):\n", c->description);
	for (unsigned k = 0; categories[k]; k++) {
		bool titled = false;
		for (const struct pcb_option *o = pcb_options; o->name; o++) {
			char lhs[64];
			if (!in_scope(o, cmd) || strcmp(o->category, categories[k]))
				continue;
			if (!titled)
				fprintf(fp, " %s:\n", category_titles[k]);
			titled = true;
			option_lhs(o, lhs, sizeof(lhs));
			fprintf(fp, "  %-22s %s [%s]\n", lhs, o->help, shown_default(o));
		}
	}
	fprintf(fp, "  %-22s %s\n  %-22s %s\n", "-h, --help", "this help", "-V, --version", "print version and exit");
	fprintf(fp, "\nExit codes: %s\n", c->exit_codes);
}

void pcb_config_help(FILE *fp) { pcb_cmd_help(PCB_CMD_RUN, fp); }

/* roff text: a leading '.' or '\'' would be a request; '-' is a hyphen, '\-' a minus */
static void roff(FILE *fp, const char *s)
{
	for (bool bol = true; *s; s++) {
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", fp);
		if (*s == '\\')
			fputs("\\e", fp);
		else if (*s == '-')
			fputs("\\-", fp);
		else
			fputc(*s, fp);
		bol = *s == '\n';
	}
}

static void man_options(FILE *fp)
{
	for (unsigned k = 0; categories[k]; k++) {
		fprintf(fp, ".SS %s\n", category_titles[k]);
		for (const struct pcb_option *o = pcb_options; o->name; o++) {
			char lhs[64];
			if (strcmp(o->category, categories[k]))
				continue;
			option_lhs(o, lhs, sizeof(lhs));
			fputs(".TP\n.B ", fp);
			roff(fp, lhs);
			fputs("\n", fp);
			roff(fp, o->help);
			fputs(" [", fp);
			roff(fp, shown_default(o));
			fputs("]\n.br\nCommands:", fp);
			for (const struct pcb_command *c = pcb_commands; c->name; c++)
				if (in_scope(o, c->cmd))
					fprintf(fp, " %s", c->name);
			fputs(".\n", fp);
		}
	}
}

void pcb_man_page(FILE *fp)
{
	fputs(".\\\" Generated by `pcbench --man` from cli/options.c; do not edit (make man).\n"
	      ".TH PCBENCH 1 \"\" \"pcbench\" \"User Commands\"\n.SH NAME\npcbench \\- post\\-copy live migration "
	      "benchmark with userfaultfd and eBPF\n.SH SYNOPSIS\n.nf\n", fp);
	for (const struct pcb_command *c = pcb_commands; c->name; c++) {
		fputs("pcbench ", fp);
		roff(fp, c->usage);
		fputs("\n", fp);
	}
	fputs("pcbench list\npcbench \\-\\-man\npcbench \\-\\-version\n.fi\n.SH COMMANDS\n", fp);
	for (const struct pcb_command *c = pcb_commands; c->name; c++) {
		fprintf(fp, ".SS %s\n", c->name);
		roff(fp, c->description);
		fputs("\n.PP\nExit status: ", fp);
		roff(fp, c->exit_codes);
		fputs("\n", fp);
	}
	fputs(".SS list\nLists the registered pre\\-paging policies and workloads with their knobs.\n"
	      ".SH OPTIONS\nOptions take a value as \\fB\\-\\-name=value\\fR or \\fB\\-\\-name value\\fR; "
	      "the last one given wins.  Durations take units (ns, us, ms, s), sizes K/M/G/T suffixes.  "
	      "Each option lists the commands that accept it; an option name used by two commands with "
	      "different meanings is listed twice.\n", fp);
	man_options(fp);
	fputs(".SS Common\n.TP\n.B \\-h, \\-\\-help\n"
	      "the command's help\n.TP\n.B \\-V, \\-\\-version\nprint version and exit\n"
	      ".SH FILES\n.TP\n.I configs/*.conf\njob files for \\fBpcbench bench\\fR (format: configs/README.md)\n"
	      ".TP\n.I results/\nwhere \\fBpcbench bench\\fR writes result directories\n"
	      ".SH SEE ALSO\n.BR pctrace (8),\ndocs/design.md, docs/metrics.md\n", fp);
}

/* ---- parsing ---------------------------------------------------------------------------- */

static bool any_scope(const char *name)
{
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (!strcmp(o->name, name))
			return true;
	return false;
}

/* "-v": the option of cmd's scope with that short name (its long name in name), or NULL with
 * the long name of one in another scope in name ("" if none has it) */
static const struct pcb_option *find_short(enum pcb_cmd cmd, char c, char *name, size_t len)
{
	snprintf(name, len, "%s", "");
	for (const struct pcb_option *o = pcb_options; o->name; o++)
		if (o->short_name == c) {
			snprintf(name, len, "%s", o->name);
			if (in_scope(o, cmd))
				return o;
		}
	return NULL;
}

/* An option cmd does not take (name: its long name, "" unknown, NULL too long; a: as given). */
static int option_misplaced(const struct pcb_command *c, const char *name, const char *a)
{
	const char *pfx = c->cmd == PCB_CMD_RUN ? "" : c->name, *sep = pfx[0] ? ": " : "";
	char shown[96];
	if (name && name[0])
		snprintf(shown, sizeof(shown), a[1] == '-' ? "--%s" : "%s (--%s)", a[1] == '-' ? name : a, name);
	if (name && name[0] && any_scope(name))
		pcb_err("%s%soption %s does not apply to `pcbench %s` (see pcbench %s --help)", pfx, sep, shown, c->name, c->name);
	else if (name && name[0])
		pcb_err("%s%sunknown option %s (see --help)", pfx, sep, shown);
	else
		pcb_err("%s%sunknown option %s (see --help)", pfx, sep, a);
	return PCB_EXIT_USAGE;
}

/* one argv entry at *i (consuming the next for a separate value); 0, 1 or an exit code */
static int parse_arg(const struct pcb_command *c, struct pcb_config *cfg, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *pfx = c->cmd == PCB_CMD_RUN ? "" : c->name, *sep = pfx[0] ? ": " : "";
	char why[512], name[64];
	if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
		pcb_cmd_help(c->cmd, stdout);
		return 1;
	}
	if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
		printf("pcbench %s (git %s)\n", PCB_VERSION, PCB_GITREV);
		return 1;
	}
	if (a[0] != '-' && cfg->nargs < c->max_args && cfg->nargs < sizeof(cfg->args) / sizeof(cfg->args[0])) {
		cfg->args[cfg->nargs++] = argv[*i];
		return 0;
	}
	const struct pcb_option *o = NULL;
	if (a[0] == '-' && a[1] && a[1] != '-' && !a[2] && (o = find_short(c->cmd, a[1], name, sizeof(name))) == NULL)
		return option_misplaced(c, name, a);
	if (!o && strncmp(a, "--", 2) != 0) {
		pcb_err("%s%sunexpected argument '%s' (options look like --name=value; see --help)", pfx, sep, a);
		return PCB_EXIT_USAGE;
	}
	const char *eq = o ? NULL : strchr(a + 2, '='), *val;
	size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
	if (!o && nl < sizeof(name)) {
		memcpy(name, a + 2, nl);
		name[nl] = 0;
		o = find_opt(c->cmd, name);
	}
	if (!o)
		return option_misplaced(c, nl < sizeof(name) ? name : NULL, a);
	if (!takes_value(o) && eq) {
		pcb_err("%s%soption --%s takes no value", pfx, sep, name);
		return PCB_EXIT_USAGE;
	}
	if (o->type == PCB_OPT_COUNT) {
		(*(unsigned *)((char *)cfg + o->off))++;
		return 0;
	}
	if (o->type == PCB_OPT_FLAG) {
		val = "1";
	} else if (eq) {
		val = eq + 1;
	} else if (*i + 1 < argc) {
		val = argv[++*i];
	} else {
		pcb_err("%s%soption --%s needs a value", pfx, sep, name);
		return PCB_EXIT_USAGE;
	}
	if (set_opt(cfg, o, val, why, sizeof(why)) < 0) {
		pcb_err("%s%s%s", pfx, sep, why);
		return PCB_EXIT_USAGE;
	}
	return 0;
}

int pcb_cmd_parse(enum pcb_cmd cmd, struct pcb_config *cfg, int argc, char **argv, int first)
{
	const struct pcb_command *c = pcb_command_find(cmd);
	for (int i = first; i < argc; i++) {
		int r = parse_arg(c, cfg, argc, argv, &i);
		if (r)
			return r;
	}
	return 0;
}

struct pcb_config *pcb_cmd_config(enum pcb_cmd cmd, int argc, char **argv, int first, int *rc)
{
	struct pcb_config *cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		pcb_err("%s: out of memory", pcb_command_find(cmd)->name);
		*rc = PCB_EXIT_OSERR;
		return NULL;
	}
	pcb_cmd_defaults(cmd, cfg);
	*rc = pcb_cmd_parse(cmd, cfg, argc, argv, first);
	return cfg;
}

int pcb_config_parse(struct pcb_config *cfg, int argc, char **argv, int first)
{
	return pcb_cmd_parse(PCB_CMD_RUN, cfg, argc, argv, first);
}

void pcb_config_resolve(struct pcb_config *cfg)
{
	const struct pcb_install_ops *ops = pcb_install_find(cfg->install, false);
	if (!cfg->install_batch && ops)
		cfg->install_batch = ops->default_batch;
}

void pcb_cmd_json(enum pcb_cmd cmd, const struct pcb_config *cfg, struct pcb_json *j, const char *key)
{
	pcb_json_obj_begin(j, key);
	for (const struct pcb_option *o = pcb_options; o->name; o++) {
		const char *base = (const char *)cfg + o->off;
		char k[80];
		if (!in_scope(o, cmd))
			continue;
		switch (o->type) {
		case PCB_OPT_SIZE:
		case PCB_OPT_U64:
			pcb_json_u64(j, o->name, *(const uint64_t *)base);
			break;
		case PCB_OPT_DURATION:
			snprintf(k, sizeof(k), "%s_ns", o->name);
			pcb_json_u64(j, k, *(const uint64_t *)base);
			break;
		case PCB_OPT_UINT:
		case PCB_OPT_UINT_AUTO:
		case PCB_OPT_COUNT:
			pcb_json_u64(j, o->name, *(const unsigned *)base);
			break;
		case PCB_OPT_DOUBLE:
			pcb_json_dbl(j, o->name, *(const double *)base);
			break;
		case PCB_OPT_CHOICE:
			pcb_json_str(j, o->name, choice_name(o, *(const int *)base));
			break;
		case PCB_OPT_FLAG:
			pcb_json_bool(j, o->name, *(const bool *)base);
			break;
		default:
			pcb_json_str(j, o->name, base);
			break;
		}
	}
	pcb_json_obj_end(j);
}

void pcb_config_json(const struct pcb_config *cfg, struct pcb_json *j, const char *key)
{
	pcb_cmd_json(PCB_CMD_RUN, cfg, j, key);
}
