/* The Oracle's measured figures in the store (table "figures", schema version 8): for each kind
 * of figure ("activation", "drain", "boot"), image and RM, the last samples in seconds as a JSON
 * array, oldest first. oracle-figures.c owns the kinds and the ring; the store keeps the rows so
 * that a restarted Oracle keeps its medians. */
#pragma once

#include <jansson.h>

#include "store/store.h"

#define STORE_FIGURES_NAME_MAX 64 /* bytes of a kind, image or RM name, with its NUL */

/* Writes the row of (kind, image, rm), replacing it: samples is an array of numbers. -EINVAL
 * (nothing written) for an empty or too long name or samples that are not an array; -errno of
 * the store otherwise. */
int store_figures_put(store_t *s, const char *kind, const char *image, const char *rm, const json_t *samples);
/* Every row as a new JSON array of {"kind","image","rm","samples"} in *ret: 0, or -EIO. */
int store_figures_list(store_t *s, json_t **ret);
