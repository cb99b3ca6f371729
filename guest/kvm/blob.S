/* The guest image built by the Makefile (build/kvm-guest/guest.bin), linked
 * into pcbench. */
	.section .rodata
	.balign 4096
	.globl pcb_kvm_guest_image, pcb_kvm_guest_image_end
pcb_kvm_guest_image:
	.incbin PCB_KVM_GUEST_BIN
pcb_kvm_guest_image_end:
	.section .note.GNU-stack, "", @progbits
