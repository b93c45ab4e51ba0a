/* prompts_data.h — the built-in prompts embedded at build time
 * (scripts/embed-prompts turns the WAV files of data/prompts into prompts_data.c). */
#ifndef OM_MEDIA_PROMPTS_DATA_H
#define OM_MEDIA_PROMPTS_DATA_H

#include <stddef.h>
#include <stdint.h>

struct om_media_builtin {
	const char *name;
	const int16_t *pcm; /* 8 kHz mono */
	size_t n;
};

/* Ends with a NULL name. */
extern const struct om_media_builtin om_media_builtins[];

#endif
