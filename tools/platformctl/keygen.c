/* platformctl keygen: create a CURVE key pair for the bus (docs/security.md).
 *   platformctl keygen --secret FILE [--public FILE] [--force]
 * The secret file is created 0600 (refused if it exists, unless --force);
 * the public key goes to --public (0644) and to stdout. Local only: it
 * does not talk to the API. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "plat/keys.h"

int ctl_keygen_main(int argc, char **argv)
{
    const char *secret = NULL, *pub = NULL;
    bool force = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc)
            secret = argv[++i];
        else if (strcmp(argv[i], "--public") == 0 && i + 1 < argc)
            pub = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: platformctl keygen --secret FILE [--public FILE] [--force]\n"
                   "  creates a CURVE key pair: the secret key in FILE (mode 0600), the public\n"
                   "  key in --public (0644) and on stdout. Authorize a hostboot or dev host\n"
                   "  by adding {\"<id>\": \"<public key>\"} to platformd's\n"
                   "  bus.authorized_keys_file (docs/security.md).\n");
            return CTL_EXIT_OK;
        } else {
            fprintf(stderr, "platformctl keygen: unexpected argument \"%s\"\n"
                            "usage: platformctl keygen --secret FILE [--public FILE] [--force]\n",
                    argv[i]);
            return CTL_EXIT_USAGE;
        }
    }
    if (!secret) {
        fprintf(stderr, "usage: platformctl keygen --secret FILE [--public FILE] [--force]\n");
        return CTL_EXIT_USAGE;
    }
    plat_keypair_t kp;
    char why[512];
    int rc = plat_keys_new(&kp);
    if (rc == 0)
        rc = plat_keys_save(secret, pub, &kp, force, why, sizeof why);
    else
        snprintf(why, sizeof why, "cannot create a key pair (libzmq without CURVE?)");
    if (rc != 0) {
        fprintf(stderr, "platformctl keygen: %s\n", why);
        plat_keys_wipe(&kp);
        return CTL_EXIT_USAGE;
    }
    printf("%s\n", kp.public_z85);
    plat_keys_wipe(&kp);
    return CTL_EXIT_OK;
}
