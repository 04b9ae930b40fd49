/*
 * kvm_freebsd.c - libkvm.so on a FreeBSD/amd64 minidump, as a FreeBSD program would use it on Linux.
 *
 *   kvm_freebsd -M minidump -N kernel
 *
 * The minidump and the kernel are the test builders' (tests/Kvm.Testing/FreeBsd: FreeBsdAmd64Kernel with its
 * processes), so the values checked are theirs:
 *   - kvm_open2 without a resolver opens it (FreeBSD refuses a non-native kernel without one); kvm_native is 0,
 *     kvm_kerndisp 0; a resolver given is consulted first, its symbols N_DATA|N_EXT;
 *   - kvm_nlist works on the non-native image (FreeBSD: "kvm_nlist of non-native vmcore"), with FreeBSD's types;
 *   - kvm_read of the kernel's osrelease; of a user address, -1 and "invalid address (0x...)";
 *   - kvm_walk_pages returns 1 with version-2 records whose kp_offset is the page's place in the file;
 *   - kvm_getprocs lists allproc from the kernel's CTF, kvm_getargv gives p_args.
 */
#include "ktest.h"

#define KERNBASE 0xffffffff80000000UL

static int resolve(const char *name, kvaddr_t *addr)
{
	if (strcmp(name, "resolver_only") == 0) {
		*addr = 0xfffffe0000123000UL;
		return 0;
	}
	return 1;
}

struct walk {
	unsigned long count, bad, kmap, dmap_only;
	int fd;
	kvm_t *kd;
	char first_bad[256];
};

static int visit(struct kvm_page *p, void *closure)
{
	struct walk *w = closure;
	w->count++;
	if (p->kp_kmap_vaddr != 0)
		w->kmap++;
	else
		w->dmap_only++;
	int ok = p->kp_version == LIBKVM_WALK_PAGES_VERSION && (p->kp_prot & VM_PROT_READ) != 0;
	if (ok && p->kp_offset != -1 && p->kp_len == 4096) {
		unsigned char file[4096], mem[4096];
		unsigned long va = p->kp_kmap_vaddr != 0 ? p->kp_kmap_vaddr : p->kp_dmap_vaddr;
		ok = pread(w->fd, file, sizeof(file), (off_t)p->kp_offset) == (ssize_t)sizeof(file) && kvm_read(w->kd, va, mem, sizeof(mem)) == (ssize_t)sizeof(mem) &&
		     memcmp(file, mem, sizeof(mem)) == 0;
	}
	if (!ok && w->bad++ == 0)
		snprintf(w->first_bad, sizeof(w->first_bad), "paddr 0x%llx kmap 0x%llx offset %lld", (unsigned long long)p->kp_paddr,
		         (unsigned long long)p->kp_kmap_vaddr, (long long)p->kp_offset);
	return 1;
}

int main(int argc, char **argv)
{
	ktest_options(argc, argv);
	char errbuf[_POSIX2_LINE_MAX] = "";
	kvm_t *kd = kvm_open2(opt_namelist, opt_core, O_RDONLY, errbuf, NULL);
	if (kd == NULL)
		bail("kvm_open2 of the minidump without a resolver", "%s", errbuf);
	check(1, "kvm_open2 opens a FreeBSD minidump without a resolver", "");
	check(kvm_native(kd) == 0, "kvm_native is 0 for a FreeBSD image on Linux", "%d", kvm_native(kd));
	check(kvm_kerndisp(kd) == 0, "kvm_kerndisp is 0", "%lld", (long long)kvm_kerndisp(kd));

	struct nlist nl[] = { { .n_name = "_version" }, { .n_name = "KPML4phys" }, { .n_name = "kernbase" }, { .n_name = "nowhere" }, { .n_name = NULL } };
	int missing = kvm_nlist(kd, nl);
	check(missing == 1, "kvm_nlist works on the non-native image, one name missing", "returned %d: %s", missing, kvm_geterr(kd));
	check(nl[0].n_type == (N_TEXT | N_EXT) && nl[0].n_value == KERNBASE + 0x280000, "version is read-only data: N_TEXT|N_EXT", "type 0x%x value 0x%lx",
	      nl[0].n_type, nl[0].n_value);
	check(nl[1].n_type == (N_DATA | N_EXT) && nl[1].n_value == KERNBASE + 0x300000, "KPML4phys is data: N_DATA|N_EXT", "type 0x%x value 0x%lx", nl[1].n_type,
	      nl[1].n_value);
	check(nl[2].n_type == (N_ABS | N_EXT) && nl[2].n_value == KERNBASE, "kernbase is absolute", "type 0x%x value 0x%lx", nl[2].n_type, nl[2].n_value);
	check(nl[3].n_type == 0 && nl[3].n_value == 0, "a missing name gets type and value 0", "type 0x%x value 0x%lx", nl[3].n_type, nl[3].n_value);

	char release[16] = "";
	ssize_t n = kvm_read(kd, KERNBASE + 0x280200, release, 12);
	check(n == 12 && strcmp(release, "14.0-RELEASE") == 0, "kvm_read reads osrelease through the minidump's page map", "%zd '%s'", n, release);
	char byte;
	n = kvm_read(kd, 0x400000, &byte, 1);
	check(n == -1 && strncmp(kvm_geterr(kd), "invalid address (0x400000)", 26) == 0, "a user address is an invalid address in a minidump", "%zd: %s", n,
	      kvm_geterr(kd));

	struct walk w;
	memset(&w, 0, sizeof(w));
	w.kd = kd;
	w.fd = open(opt_core, O_RDONLY);
	int r = kvm_walk_pages(kd, visit, &w);
	check(r == 1 && w.kmap > 0 && w.dmap_only > 0, "kvm_walk_pages lists kernel-map pages, then direct-map-only pages, and returns 1", "returned %d: %lu + %lu",
	      r, w.kmap, w.dmap_only);
	check(w.bad == 0, "every record is version 2 and kp_offset holds the page's bytes", "%lu of %lu bad; first: %s", w.bad, w.count, w.first_bad);
	close(w.fd);

	int count = 0;
	struct kinfo_proc *kp = kvm_getprocs(kd, KERN_PROC_PROC, 0, &count);
	check(kp != NULL && count == 4, "kvm_getprocs lists allproc with the kernel's CTF", "%d: %s", count, kvm_geterr(kd));
	for (int i = 0; kp != NULL && i < count; i++) {
		if (kp[i].ki_pid != 42)
			continue;
		check(strcmp(kp[i].ki_comm, "sh") == 0 && kp[i].ki_ppid == 1 && kp[i].ki_ruid == 1001, "pid 42 is sh, child of init, uid 1001", "%s %d %u",
		      kp[i].ki_comm, kp[i].ki_ppid, kp[i].ki_ruid);
		char **args = kvm_getargv(kd, &kp[i], 0);
		check(args != NULL && args[0] != NULL && strcmp(args[0], "-sh") == 0 && args[1] != NULL && strcmp(args[1], "-i") == 0 && args[2] == NULL,
		      "kvm_getargv gives the kernel's copy of the arguments (p_args)", "%s", args == NULL ? kvm_geterr(kd) : "wrong strings");
	}
	kvm_close(kd);

	kd = kvm_open2(opt_namelist, opt_core, O_RDONLY, errbuf, resolve);
	if (kd == NULL)
		bail("kvm_open2 with a resolver", "%s", errbuf);
	struct nlist rl[] = { { .n_name = "resolver_only" }, { .n_name = "version" }, { .n_name = NULL } };
	missing = kvm_nlist(kd, rl);
	check(missing == 0 && rl[0].n_type == (N_DATA | N_EXT) && rl[0].n_value == 0xfffffe0000123000UL && rl[1].n_value == KERNBASE + 0x280000,
	      "a resolver given to kvm_open2 is still consulted first", "returned %d, type 0x%x value 0x%lx", missing, rl[0].n_type, rl[0].n_value);
	kvm_close(kd);
	return ktest_done();
}
