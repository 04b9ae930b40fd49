/*
 * kvm_threads.c - kvm_read from 8 threads at once on one descriptor gives the same bytes as the
 * same reads made one at a time.
 *
 *   kvm_threads -M core [-N namelist]
 *
 * The reads cover the kernel image (text and data, from _text to _end), the direct map of the
 * first 64 MiB of RAM and the per-CPU areas; sizes from 1 byte to 64 KiB, many of them crossing a
 * page boundary, and some that fail (unreadable pages near the end of the kernel's mapping), which
 * must fail the same way (-1) in every thread. The reference pass runs first, on one thread; then
 * 8 threads replay the whole list in different orders and compare each result.
 */
#include "ktest.h"

#include <pthread.h>

#define THREADS 8
#define READS 1500
#define ROUNDS 6

struct request {
	unsigned long addr;
	size_t len;
	ssize_t result;       /* of the reference pass */
	unsigned char *bytes; /* of the reference pass */
};

static struct request requests[READS];
static kvm_t *kd;

struct worker {
	int index;
	int mismatches;
	char first[512];
};

/* xorshift64*: a fixed sequence, so a failure can be replayed. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 2685821657736338717ULL;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(65536 + 64);
	uint64_t state = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->index + 1);
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < READS; i++) {
			/* Each thread walks the list in its own order: a fixed stride from a random start. */
			int k = (int)((next_random(&state) % READS + (uint64_t)i * 7919) % READS);
			const struct request *r = &requests[k];
			memset(buf, 0xa5, r->len);
			ssize_t got = kvm_read(kd, r->addr, buf, r->len);
			if (got != r->result || (got > 0 && memcmp(buf, r->bytes, (size_t)got) != 0)) {
				if (w->mismatches++ == 0) {
					snprintf(w->first, sizeof(w->first), "thread %d: kvm_read(0x%lx, %zu) returned %zd%s, the single-threaded read %zd", w->index,
					         r->addr, r->len, got, got == r->result ? " with other bytes" : "", r->result);
				}
			}
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	ktest_options(argc, argv);
	char errbuf[_POSIX2_LINE_MAX] = "";
	kd = kvm_openfiles(opt_namelist, opt_core, NULL, O_RDONLY, errbuf);
	if (kd == NULL)
		bail("kvm_openfiles of the dump", "%s", errbuf);

	unsigned long text = sym(kd, "_text"), end = sym(kd, "_end"), pob_addr = sym(kd, "page_offset_base");
	unsigned long percpu = sym(kd, "__per_cpu_offset"), hole = find_unreadable_after_readable(kd);
	unsigned long pob = 0, offset0 = 0;
	if (text == 0 || end <= text || pob_addr == 0 || kvm_read(kd, pob_addr, &pob, sizeof(pob)) != 8)
		bail("symbols", "_text 0x%lx, _end 0x%lx, page_offset_base at 0x%lx: %s", text, end, pob_addr, kvm_geterr(kd));
	if (percpu != 0)
		kvm_read(kd, percpu, &offset0, sizeof(offset0));

	/* The requests and their single-threaded results. */
	uint64_t state = 42;
	int failing = 0, crossing = 0;
	for (int i = 0; i < READS; i++) {
		struct request *r = &requests[i];
		uint64_t pick = next_random(&state);
		size_t len;
		switch (pick % 4) {
		case 0: len = 1 + (size_t)(next_random(&state) % 16); break;
		case 1: len = 1 + (size_t)(next_random(&state) % 512); break;
		case 2: len = 1 + (size_t)(next_random(&state) % 8192); break;
		default: len = 1 + (size_t)(next_random(&state) % 65536); break;
		}
		switch ((pick >> 8) % 8) {
		case 0:
		case 1:
		case 2: r->addr = text + next_random(&state) % (end - text); break;
		case 3:
		case 4: r->addr = pob + next_random(&state) % (64UL << 20); break;
		case 5:
			/* Straddle a page boundary on purpose. */
			r->addr = ((text + next_random(&state) % (end - text)) | 0xfff) - (next_random(&state) % 64);
			break;
		case 6: r->addr = offset0 != 0 ? offset0 + next_random(&state) % (256UL << 10) : text; break;
		default: r->addr = hole != 0 ? hole - 1 - next_random(&state) % 8192 : text; break;
		}
		r->len = len;
		r->bytes = malloc(len);
		r->result = kvm_read(kd, r->addr, r->bytes, len);
		failing += r->result < 0;
		crossing += ((r->addr & 4095) + len) > 4096;
	}
	check(failing > 0 && failing < READS / 2, "the reference pass has some failing reads", "%d of %d failed", failing, READS);
	check(crossing > READS / 4, "the reference pass has page-crossing reads", "%d of %d cross a page", crossing, READS);

	pthread_t threads[THREADS];
	struct worker workers[THREADS];
	for (int t = 0; t < THREADS; t++) {
		memset(&workers[t], 0, sizeof(workers[t]));
		workers[t].index = t;
		if (pthread_create(&threads[t], NULL, run, &workers[t]) != 0)
			bail("pthread_create", "%s", strerror(errno));
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);

	for (int t = 0; t < THREADS; t++) {
		char name[96];
		snprintf(name, sizeof(name), "thread %d: %d concurrent kvm_reads equal the single-threaded ones", t, READS * ROUNDS);
		check(workers[t].mismatches == 0, name, "%d mismatches; first: %s", workers[t].mismatches, workers[t].first);
	}

	for (int i = 0; i < READS; i++)
		free(requests[i].bytes);
	check(kvm_close(kd) == 0, "kvm_close returns 0", "did not");
	return ktest_done();
}
