/* verify.c - scsctl verify [PATH]: being written. */
#include "scsctl.h"

int verify_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return scsctl_failf("verify is not available yet");
}
