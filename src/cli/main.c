/* main.c — the openum command (placeholder until the CLI lands). */
#include <stdio.h>
int main(void)
{
	puts("openum " OM_VERSION);
	return 0;
}
