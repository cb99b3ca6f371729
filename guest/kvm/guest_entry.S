/* Guest entry (64-bit long mode at CPL 3 with IOPL 3, set up by the host):
 * rdi = control block, rsi = vCPU index, rsp = this vCPU's stack.  When the
 * loop returns, an OUT to the done port exits to the host, which reads the
 * results and does not resume the vCPU.  (Guest code runs at CPL 3 because
 * a nested PVM host runs guest user mode natively but emulates guest
 * kernel mode instruction by instruction.) */
	.section .text.entry, "ax"
	.code64
	.globl _start
_start:
	cld
	call	pcb_guest_main
	mov	$0x5cb, %dx
1:	out	%al, %dx
	jmp	1b
