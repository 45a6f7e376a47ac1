/* Umbrella header for libplatcommon: daemons include this one. */
#ifndef PLAT_PLAT_H
#define PLAT_PLAT_H

#include "bus.h"
#include "config.h"
#include "daemon.h"
#include "endpoint.h"
#include "envelope.h"
#include "id.h"
#include "link.h"
#include "log.h"
#include "msg.h"
#include "sync.h"
#include "uvzmq.h"

#define PLAT_VERSION "0.1.0"

#endif
