/* The baseline child of bench_spawn: the least a process can do to say
 * "I am up" on the bus. Connects a DEALER to ENDPOINT, sends one message
 * (its pid, so the driver can match it), waits for nothing, exits.
 *   bench_minimal tcp://127.0.0.1:PORT [SERVER_PUBLIC_KEY]
 * With the server's Z85 public key it connects as a CURVE client with a key
 * pair of its own, made at start (as the platform's bus is by default: the
 * handshake is part of "I am up").
 * zmq_ctx_term() blocks until the queued message is handed to the kernel
 * (linger set to 5 s, the driver's own wait), so exiting right after does not
 * lose it, and a run against nothing listening still ends. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: bench_minimal tcp://127.0.0.1:PORT [SERVER_PUBLIC_KEY]\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *s = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    int linger = 5000;
    if (s && argc == 3) {
        char pub[41], sec[41];
        if (strlen(argv[2]) != 40 || zmq_curve_keypair(pub, sec) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, argv[2], 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40) != 0) {
            fprintf(stderr, "bench_minimal: CURVE: %s\n", zmq_strerror(zmq_errno()));
            return 1;
        }
    }
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "bench_minimal: connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    char msg[32];
    int n = snprintf(msg, sizeof msg, "%ld", (long)getpid());
    int rc = 0;
    if (zmq_send(s, msg, (size_t)n, 0) != n) {
        fprintf(stderr, "bench_minimal: send: %s\n", zmq_strerror(zmq_errno()));
        rc = 1;
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}
