/* The figures the switching policy uses, measured by the Oracle (oracle-figures.c): running
 * medians of activation, drain and boot times per image and RM. */
#pragma once

#include "oracle/oracle-internal.h"
#include "policy/policy.h"

/* What a service with no figure yet gets: bench/activation's activation of a pre-booted VM from
 * the Nest and a graceful drain when the policy was written. A service is ready only once its
 * pool was pre-booted, so a boot figure exists by then and these are rarely used. */
#define ORACLE_FIGURES_DEFAULT_ACTIVATION_S 1.1
#define ORACLE_FIGURES_DEFAULT_DRAIN_S 1.5

/* Fills ps->activation_s and ps->drain_s for service sv, from the medians of sv's image. */
void oracle_figures_fill(oracle_t *o, const service_record_t *sv, policy_service_t *ps);
