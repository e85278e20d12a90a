/*
 * cmp.h - the qsort()/bsearch() comparison of uint32_t values (UIDs), in
 * one place for the sync layers that sort and search UID arrays.
 */
#ifndef FERRY_CMP_H
#define FERRY_CMP_H

#include <stdint.h>

static inline int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

#endif
