/* Free loopback TCP ports for tests, below the kernel's ephemeral range
 * (32768+), where outgoing connections would collide with them. */
#ifndef PLAT_TESTPORTS_H
#define PLAT_TESTPORTS_H

/* A port in [20000, 32000) that could be bound on 127.0.0.1 just now
 * (random start, linear probe). Returns the port, or -1 if none was free. */
int plat_test_free_port(void);

/* "tcp://127.0.0.1:<free port>" into buf; returns the port or -1. */
int plat_test_free_endpoint(char *buf, unsigned size);

#endif
