/*
 * insncount: a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that counts the guest
 * instructions each vCPU executes, user and kernel apart, into a file the host reads at any
 * moment.
 *
 *   qemu-system-aarch64 ... -plugin insncount.so,out=/path/counters,kernel=0xffff000000000000
 *
 * Rules this file keeps:
 * - The counters live in a shared mmap of `out`: per vCPU one 64-byte slot holding two
 *   little-endian uint64 (user, kernel). A reader (tests/bench/arm/plugin.py) sums the slots
 *   whenever it likes; each slot is written only by its own vCPU thread, so no locks and no
 *   lost updates under multi-threaded TCG (inline ops in API version 1 add to one shared
 *   address, which two vCPU threads would race on).
 * - Kernel or user is decided per translation block by its virtual address: the 7.2 API does
 *   not expose the privilege level, and Linux keeps its kernel (and modules, and the ARM vector
 *   page) at or above `kernel` and user space below it.
 * - A block's instructions are counted when the block starts executing; a block left early
 *   (an exception, an interrupt) is counted whole. Blocks are a few instructions long, so the
 *   error is small and the same for every workload.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_VCPUS 64
#define SLOT_WORDS 8 /* 64 bytes: one cache line per vCPU */

static uint64_t *counters;
static uint64_t kernel_base;

static void tb_exec(unsigned int vcpu_index, void *udata)
{
    uintptr_t v = (uintptr_t)udata;
    if (vcpu_index < MAX_VCPUS) {
        counters[vcpu_index * SLOT_WORDS + (v & 1)] += v >> 1;
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uintptr_t n = qemu_plugin_tb_n_insns(tb);
    uintptr_t kernel = qemu_plugin_tb_vaddr(tb) >= kernel_base;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)((n << 1) | kernel));
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *out = NULL;
    int have_base = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            out = argv[i] + 4;
        } else if (strncmp(argv[i], "kernel=", 7) == 0) {
            kernel_base = strtoull(argv[i] + 7, NULL, 0);
            have_base = 1;
        } else {
            fprintf(stderr, "insncount: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    if (out == NULL || !have_base) {
        fprintf(stderr, "insncount: needs out=FILE and kernel=ADDRESS\n");
        return -1;
    }
    size_t size = MAX_VCPUS * SLOT_WORDS * sizeof(uint64_t);
    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, size) != 0) {
        perror("insncount: open out");
        return -1;
    }
    counters = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (counters == MAP_FAILED) {
        perror("insncount: mmap");
        return -1;
    }
    memset(counters, 0, size);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    return 0;
}
