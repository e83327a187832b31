/* The figures the switching policy uses (oracle-figures.h). */
#include "oracle/oracle-figures.h"

void oracle_figures_fill(oracle_t *o, const service_record_t *sv, policy_service_t *ps) {
        (void)o;
        (void)sv;
        ps->activation_s = ORACLE_FIGURES_DEFAULT_ACTIVATION_S;
        ps->drain_s = ORACLE_FIGURES_DEFAULT_DRAIN_S;
}
