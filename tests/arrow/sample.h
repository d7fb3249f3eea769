/* sample.h - sample tables for the Arrow tests and the IPC fuzzer's seeds
 * (tests/arrow/sample.c). */
#ifndef TL_TEST_ARROW_SAMPLE_H
#define TL_TEST_ARROW_SAMPLE_H

#include "arrow/arrow.h"

/* One column of every supported type, `rows` rows with nulls; `seed`
 * shifts the values. Returns tl_ab_finish's code. */
int sample_all_types(struct ArrowSchema *s, struct ArrowArray *a, int rows,
                     int seed);
/* The shape of Flight SQL GetSqlInfo's reply, a few rows of each kind. */
int sample_sql_info(struct ArrowSchema *s, struct ArrowArray *a);

#endif
