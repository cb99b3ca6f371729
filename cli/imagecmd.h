/* `pcbench image stats|dump` (cli/imagecmd.c). */
#ifndef PCB_IMAGECMD_H
#define PCB_IMAGECMD_H
int pcb_cmd_image(int argc, char **argv);
#endif
