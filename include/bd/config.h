/* Typed configuration: a flat list of key = number | string, filled from a
 * Lua table or `key=value` arguments and read by denoisers, metrics and the
 * training loop through typed getters with defaults.
 *
 * Every getter marks its key as used and remembers that it was asked for,
 * so after construction bd_config_check_unused can name a misspelt key
 * ("widht"), list the keys the owner reads and the nearest one. */
#ifndef BD_CONFIG_H
#define BD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bd/status.h"

typedef struct bd_config bd_config;

bd_config *bd_config_new(void);
void       bd_config_free(bd_config *c);

/* Set (or replace) a value. Keys: [a-z0-9_.]+, at most 63 characters. */
bd_status bd_config_set_num(bd_config *c, const char *key, double value);
bd_status bd_config_set_str(bd_config *c, const char *key, const char *value);

/* The same keys and values, none marked used (NULL: an empty config);
 * NULL with the error set when out of memory. */
bd_config *bd_config_copy(const bd_config *c);

bool bd_config_has(const bd_config *c, const char *key);

/* Typed getters: the value if present, else dflt. A present value of the
 * wrong type (or a non-integer for _int, or a number outside [lo, hi])
 * fails, naming the key, the value found and what is allowed. */
bd_status bd_config_int(bd_config *c, const char *key, int64_t dflt,
                        int64_t lo, int64_t hi, int64_t *out);
bd_status bd_config_num(bd_config *c, const char *key, double dflt, double lo,
                        double hi, double *out);
bd_status bd_config_str(bd_config *c, const char *key, const char *dflt,
                        const char **out);
/* A string that must be one of the NULL-terminated `choices`. */
bd_status bd_config_choice(bd_config *c, const char *key, const char *dflt,
                           const char *const *choices, int *index);

/* The index of name in the NULL-terminated names, or -1. */
int         bd_name_find(const char *const *names, const char *name);
/* The one of the n names nearest to `name` (a small edit distance, or a
 * prefix of one another), or NULL when none is near. */
const char *bd_name_nearest(const char *const *names, int n, const char *name);
/* "a, b, c": every one of the NULL-terminated names, into buf (cut short
 * if it does not fit); returns buf. */
const char *bd_names_join(const char *const *names, char *buf, size_t len);

/* List key among the allowed ones in check_unused's message without
 * reading it (a key its owner reads by other means). */
void bd_config_allow(bd_config *c, const char *key);

/* Fails naming the first key no getter read, with every key a getter asked
 * for (present or not) and the nearest to the misspelling:
 * "unknown key 'widht' for unet (allowed: attention, ..., width; did you
 * mean 'width'?)". */
bd_status bd_config_check_unused(const bd_config *c, const char *owner);

/* Iterate over entries (for writing the resolved config). */
int         bd_config_count(const bd_config *c);
const char *bd_config_key(const bd_config *c, int i);
/* Returns true and sets *num for a number, false and sets *str for a string. */
bool        bd_config_value(const bd_config *c, int i, double *num,
                            const char **str);

#endif
