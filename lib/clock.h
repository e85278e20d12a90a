/*
 * clock.h - the monotonic clock in milliseconds, for deadlines and waits
 * (timeouts, password_cmd's limit, the settle wait after a killed run).
 */
#ifndef FERRY_CLOCK_H
#define FERRY_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: only differences mean anything. */
int64_t clock_now_ms(void);

#endif
