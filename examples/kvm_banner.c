#include <kvm.h>
#include <stdio.h>

int main(int argc, char **argv) {
	char errbuf[_POSIX2_LINE_MAX], banner[128] = "";
	struct nlist nl[] = { { .n_name = "linux_banner" }, { .n_name = NULL } };
	kvm_t *kd = kvm_openfiles(NULL, argc > 1 ? argv[1] : NULL, NULL, O_RDONLY, errbuf);
	if (kd == NULL) { fprintf(stderr, "%s\n", errbuf); return 1; }
	if (kvm_nlist(kd, nl) != 0 || kvm_read(kd, nl[0].n_value, banner, sizeof banner - 1) < 0) { fprintf(stderr, "%s\n", kvm_geterr(kd)); return 1; }
	printf("%s", banner);
	return kvm_close(kd);
}
