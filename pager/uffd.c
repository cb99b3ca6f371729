#include "pager/uffd.h"
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_raw(const char **via, bool kernel_faults)
{
	int fd = -1, e = 0;
	if (!kernel_faults) {
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
		if (fd >= 0) {
			*via = "syscall";
			return fd;
		}
		e = errno;
	}
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		e = errno;
		close(dev);
		if (fd >= 0) {
			*via = "/dev/userfaultfd";
			return fd;
		}
	} else if (errno != ENOENT || !e) {
		e = errno;
	}
	if (kernel_faults) {
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0) {
			*via = "syscall (kernel faults too)";
			return fd;
		}
	}
	return -e;
}

int pcb_uffd_open(uint64_t want, struct pcb_uffd_info *info, char *why, size_t whylen)
{
	const char *via = NULL;
	bool kf = want & PCB_UFFD_KERNEL_FAULTS;
	want &= ~PCB_UFFD_KERNEL_FAULTS;
	memset(info, 0, sizeof(*info));
	/* probe what the kernel offers on a throw-away fd: UFFDIO_API can be called once per fd */
	int fd = open_raw(&via, kf);
	if (fd < 0) {
		int e = -fd;
		if (e == EPERM || e == EACCES)
			snprintf(why, whylen, "userfaultfd refused (%s): run as root, or set vm.unprivileged_userfaultfd=1, "
				 "or give access to /dev/userfaultfd", strerror(e));
		else
			snprintf(why, whylen, "userfaultfd unavailable (%s): kernel built without CONFIG_USERFAULTFD?", strerror(e));
		return fd;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = errno;
		close(fd);
		snprintf(why, whylen, "UFFDIO_API failed: %s", strerror(e));
		return -e;
	}
	close(fd);
	info->features_supported = api.features;
	fd = open_raw(&via, kf);
	if (fd < 0) {
		snprintf(why, whylen, "userfaultfd: %s", strerror(-fd));
		return fd;
	}
	api.api = UFFD_API;
	api.features = want & info->features_supported;
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		int e = errno;
		close(fd);
		snprintf(why, whylen, "UFFDIO_API(features 0x%llx) failed: %s", (unsigned long long)(want & info->features_supported), strerror(e));
		return -e;
	}
	/* on return the kernel fills api.features with everything it supports,
	 * not with what this fd enabled: the enabled set is what we asked for */
	info->features_enabled = want & info->features_supported;
	info->ioctls_api = api.ioctls;
	info->opened_via = via;
	return fd;
}

int pcb_uffd_register(int uffd, void *addr, size_t len, uint64_t mode, struct pcb_uffd_info *info)
{
	struct uffdio_register r = { .range = { (uintptr_t)addr, len }, .mode = mode };
	if (ioctl(uffd, UFFDIO_REGISTER, &r) < 0)
		return -errno;
	if (info)
		info->ioctls_range = r.ioctls;
	return 0;
}

int pcb_uffd_unregister(int uffd, void *addr, size_t len)
{
	struct uffdio_range r = { (uintptr_t)addr, len };
	return ioctl(uffd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

int pcb_uffd_copy(int uffd, void *dst, const void *src, size_t len, int dontwake)
{
	struct uffdio_copy c = { .dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len,
				 .mode = dontwake ? UFFDIO_COPY_MODE_DONTWAKE : 0 };
	for (;;) {
		if (ioctl(uffd, UFFDIO_COPY, &c) == 0)
			return 0;
		if (errno == EAGAIN && c.copy > 0 && (size_t)c.copy < len) {
			/* partial copy (mm changing): continue with the rest */
			c.dst += (uint64_t)c.copy;
			c.src += (uint64_t)c.copy;
			c.len -= (uint64_t)c.copy;
			c.copy = 0;
			continue;
		}
		if (errno == EAGAIN)
			continue;
		return -errno;
	}
}

int pcb_uffd_zeropage(int uffd, void *dst, size_t len, int dontwake)
{
	struct uffdio_zeropage z = { .range = { (uintptr_t)dst, len },
				     .mode = dontwake ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0 };
	for (;;) {
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) == 0)
			return 0;
		if (errno == EAGAIN)
			continue;
		return -errno;
	}
}

int pcb_uffd_wake(int uffd, void *addr, size_t len)
{
	struct uffdio_range r = { (uintptr_t)addr, len };
	return ioctl(uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

const char *pcb_uffd_feature_name(unsigned bit)
{
	static const char *const names[] = {
		"PAGEFAULT_FLAG_WP", "EVENT_FORK", "EVENT_REMAP", "EVENT_REMOVE", "MISSING_HUGETLBFS",
		"MISSING_SHMEM", "EVENT_UNMAP", "SIGBUS", "THREAD_ID", "MINOR_HUGETLBFS", "MINOR_SHMEM",
		"EXACT_WP_ADDRESS", "WP_HUGETLBFS_SHMEM", "WP_UNPOPULATED", "POISON", "WP_ASYNC", "MOVE",
	};
	return bit < sizeof(names) / sizeof(names[0]) ? names[bit] : NULL;
}
