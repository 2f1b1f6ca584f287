/* smtpd: the smtp worker's policy and delivery (see smtpd.c). */
#ifndef TEGAMI_SMTPD_H
#define TEGAMI_SMTPD_H

#include "daemon/delivery.h"

#endif
