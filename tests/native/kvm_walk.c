/*
 * kvm_walk.c - kvm_walk_pages, which kvm.h declares (struct kvm_page, LIBKVM_WALK_PAGES_VERSION 2).
 *
 *   kvm_walk -M core [-N namelist]
 *
 * Kept apart from the other programs so that, while libkvm.so does not define kvm_walk_pages yet,
 * only this one fails (to link).
 *
 *   - a callback that returns 0 stops the walk after one page and the walk returns 0;
 *   - a complete walk returns 1; every record has kp_version 2, a length of 4 KiB, 2 MiB or 1 GiB,
 *     a physical address aligned to it, VM_PROT_READ, and a direct-map address of
 *     page_offset_base + kp_paddr when it has one; the kernel text is among the kernel-map pages,
 *     executable; where kp_offset is not -1, the core file holds the page's bytes there.
 *   - a page the image holds that neither map reaches (QEMU dumps all of RAM, but the kernel does not
 *     direct-map the reserved pages above max_pfn: page_offset_base + pa does not translate) has
 *     both addresses 0; its bytes cannot be checked through kvm_read, so the sample skips it.
 */
#include "ktest.h"

struct walk {
	unsigned long count;
	unsigned long bad;
	char first_bad[256];
	unsigned long pob;
	unsigned long text;
	int text_seen;
	int text_exec;
	unsigned long with_offset;
	unsigned long offset_checked;
	unsigned long offset_bad;
	char first_offset_bad[256];
	int fd;
	kvm_t *kd;
	int stop_after;
};

static int visit(struct kvm_page *p, void *closure)
{
	struct walk *w = closure;
	w->count++;
	if (w->stop_after > 0)
		return w->count < (unsigned long)w->stop_after;

	int ok = p->kp_version == LIBKVM_WALK_PAGES_VERSION && (p->kp_len == 4096 || p->kp_len == (2UL << 20) || p->kp_len == (1UL << 30)) &&
	         (p->kp_paddr & (p->kp_len - 1)) == 0 && (p->kp_prot & VM_PROT_READ) != 0 &&
	         (p->kp_dmap_vaddr == 0 || p->kp_dmap_vaddr == w->pob + p->kp_paddr);
	if (!ok && w->bad++ == 0) {
		snprintf(w->first_bad, sizeof(w->first_bad), "version %u, paddr 0x%llx, kmap 0x%llx, dmap 0x%llx, prot 0x%x, len %zu, offset %lld", p->kp_version,
		         (unsigned long long)p->kp_paddr, (unsigned long long)p->kp_kmap_vaddr, (unsigned long long)p->kp_dmap_vaddr, p->kp_prot, p->kp_len,
		         (long long)p->kp_offset);
	}
	if (p->kp_kmap_vaddr != 0 && w->text >= p->kp_kmap_vaddr && w->text < p->kp_kmap_vaddr + p->kp_len) {
		w->text_seen = 1;
		w->text_exec = (p->kp_prot & VM_PROT_EXECUTE) != 0;
	}
	if (p->kp_offset != -1) {
		w->with_offset++;
		/* Sample every 64th such page: its first 4 KiB in the file equal kvm_read's. */
		unsigned long va = p->kp_kmap_vaddr != 0 ? p->kp_kmap_vaddr : p->kp_dmap_vaddr;
		if (w->with_offset % 64 == 1 && w->fd >= 0 && va != 0) {
			unsigned char file[4096], mem[4096];
			ssize_t f = pread(w->fd, file, sizeof(file), (off_t)p->kp_offset);
			ssize_t m = kvm_read(w->kd, va, mem, sizeof(mem));
			w->offset_checked++;
			if ((f != (ssize_t)sizeof(file) || m != (ssize_t)sizeof(mem) || memcmp(file, mem, sizeof(mem)) != 0) && w->offset_bad++ == 0) {
				snprintf(w->first_offset_bad, sizeof(w->first_offset_bad), "paddr 0x%llx at file offset %lld: pread %zd, kvm_read(0x%lx) %zd%s",
				         (unsigned long long)p->kp_paddr, (long long)p->kp_offset, f, va, m, f == m ? ", bytes differ" : "");
			}
		}
	}
	return 1;
}

static void check_walk(kvm_t *kd)
{
	struct walk w;
	memset(&w, 0, sizeof(w));
	w.fd = -1;
	w.stop_after = 1;
	int r = kvm_walk_pages(kd, visit, &w);
	check(r == 0 && w.count == 1, "kvm_walk_pages stops when the callback returns 0, and returns 0", "returned %d after %lu pages", r, w.count);

	memset(&w, 0, sizeof(w));
	w.kd = kd;
	w.fd = open(opt_core, O_RDONLY);
	w.text = sym(kd, "_text");
	if (kvm_read(kd, sym(kd, "page_offset_base"), &w.pob, sizeof(w.pob)) != 8)
		w.pob = 0;
	r = kvm_walk_pages(kd, visit, &w);
	check(r == 1 && w.count > 0, "a complete kvm_walk_pages returns 1", "returned %d after %lu pages: %s", r, w.count, kvm_geterr(kd));
	check(w.bad == 0, "every kvm_page is version 2, aligned, readable, with a consistent direct-map address", "%lu of %lu bad; first: %s", w.bad, w.count,
	      w.first_bad);
	check(w.text_seen && w.text_exec, "the kernel text is a kernel-map page, executable", "seen %d, executable %d", w.text_seen, w.text_exec);
	check(w.offset_bad == 0, "where kp_offset is given, the core file holds the page's bytes there", "%lu of %lu sampled pages differ; first: %s", w.offset_bad,
	      w.offset_checked, w.first_offset_bad);
	if (w.fd >= 0)
		close(w.fd);
}

int main(int argc, char **argv)
{
	ktest_options(argc, argv);
	char errbuf[_POSIX2_LINE_MAX] = "";
	kvm_t *kd = kvm_openfiles(opt_namelist, opt_core, NULL, O_RDONLY, errbuf);
	if (kd == NULL)
		bail("kvm_openfiles of the dump", "%s", errbuf);
	check_walk(kd);
	kvm_close(kd);
	return ktest_done();
}
