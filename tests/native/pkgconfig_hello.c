/*
 * pkgconfig_hello.c - the smallest libkvm program, built with nothing but
 * `cc pkgconfig_hello.c $(pkg-config --cflags --libs libkvm)`: the installed libkvm.pc finds the
 * header and the library. Prints "libkvm <LIBKVM_LINUX_VERSION>".
 */
#include <stdio.h>

#include <kvm.h>

int main(void)
{
	/* Calls that need no image: the library is loaded and its functions are bound. */
	const char *err = kvm_geterr(NULL);
	if (err == NULL || err[0] != '\0' || kvm_close(NULL) != -1) {
		fprintf(stderr, "pkgconfig_hello: kvm_geterr(NULL) or kvm_close(NULL) misbehaved\n");
		return 1;
	}
	printf("libkvm %d\n", LIBKVM_LINUX_VERSION);
	return 0;
}
