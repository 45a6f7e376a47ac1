#include "testports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT_LO 20000
#define PORT_SPAN 12000

static int port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int plat_test_free_port(void)
{
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = (unsigned)getpid();
    for (int i = 0; i < PORT_SPAN; i++) {
        int port = PORT_LO + (int)((r + (unsigned)i) % PORT_SPAN);
        if (port_bindable(port))
            return port;
    }
    return -1;
}

int plat_test_free_endpoint(char *buf, unsigned size)
{
    int port = plat_test_free_port();
    if (port > 0)
        snprintf(buf, size, "tcp://127.0.0.1:%d", port);
    return port;
}
