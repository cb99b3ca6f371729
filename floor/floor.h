/* `pcbench floor`: the pager floor benchmark (see floor.c). */
#ifndef PCB_FLOOR_H
#define PCB_FLOOR_H
/* argv[1] is "floor".  Returns the exit code. */
int pcb_floor_main(int argc, char **argv);
#endif
