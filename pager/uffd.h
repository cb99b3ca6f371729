/* Thin, checked wrappers around userfaultfd. */
#ifndef PCB_UFFD_H
#define PCB_UFFD_H
#include <stdint.h>
#include <stddef.h>
#include <linux/userfaultfd.h>

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

struct pcb_uffd_info {
	uint64_t features_supported;   /* what UFFDIO_API offers on this kernel */
	uint64_t features_enabled;     /* what we asked for and got */
	uint64_t ioctls_api;           /* from UFFDIO_API */
	uint64_t ioctls_range;         /* from UFFDIO_REGISTER on the region */
	const char *opened_via;        /* "syscall" or "/dev/userfaultfd" */
};

/* Open a userfaultfd (syscall, falling back to /dev/userfaultfd), negotiate
 * `want` features (those the kernel lacks are dropped).  Returns fd or -errno,
 * with a one-line reason in why. */
/* Not a kernel feature bit: in `want`, also take faults from kernel-mode
 * accesses to the region (KVM's fault path, copy_from_user), i.e. open the
 * userfaultfd without UFFD_USER_MODE_ONLY (/dev/userfaultfd first). */
#define PCB_UFFD_KERNEL_FAULTS (1ull << 63)
int pcb_uffd_open(uint64_t want, struct pcb_uffd_info *info, char *why, size_t whylen);
int pcb_uffd_register(int uffd, void *addr, size_t len, uint64_t mode, struct pcb_uffd_info *info);
int pcb_uffd_unregister(int uffd, void *addr, size_t len);
/* Install helpers: return 0, or -errno (-EEXIST when the page is already there). */
int pcb_uffd_copy(int uffd, void *dst, const void *src, size_t len, int dontwake);
int pcb_uffd_zeropage(int uffd, void *dst, size_t len, int dontwake);
int pcb_uffd_wake(int uffd, void *addr, size_t len);
/* Names of the feature bits, for the JSON. */
const char *pcb_uffd_feature_name(unsigned bit);
#endif
