/* test.h - a tiny test harness: TEST(name) functions registered at load time,
 * CHECK macros that report file:line and fail the test, and a main that runs
 * one named test (as ctest does, one process per test) or all of them. */
#ifndef TL_TEST_H
#define TL_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tl_test_case {
  const char *name;
  void (*fn)(void);
} tl_test_case;

#define TL_TEST_MAX 128
extern tl_test_case tl_test_cases[TL_TEST_MAX];
extern int tl_test_ncases;

#define TEST(name)                                                             \
  static void test_##name(void);                                               \
  __attribute__((constructor)) static void test_register_##name(void) {        \
    if (tl_test_ncases < TL_TEST_MAX)                                          \
      tl_test_cases[tl_test_ncases++] = (tl_test_case){#name, test_##name};    \
  }                                                                            \
  static void test_##name(void)

#define FAILF(...)                                                             \
  do {                                                                         \
    fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                            \
    fprintf(stderr, __VA_ARGS__);                                              \
    fputc('\n', stderr);                                                       \
    exit(1);                                                                   \
  } while (0)

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      FAILF("check failed: %s", #cond);                                        \
  } while (0)

#define CHECK_EQ(a, b)                                                         \
  do {                                                                         \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);            \
    if (check_a_ != check_b_)                                                  \
      FAILF("check failed: %s == %s (%lld != %lld)", #a, #b, check_a_,         \
            check_b_);                                                         \
  } while (0)

#define CHECK_U64(a, b)                                                        \
  do {                                                                         \
    uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);               \
    if (check_a_ != check_b_)                                                  \
      FAILF("check failed: %s == %s (%" PRIu64 " != %" PRIu64 ")", #a, #b,     \
            check_a_, check_b_);                                               \
  } while (0)

#define CHECK_STR(a, b)                                                        \
  do {                                                                         \
    const char *check_a_ = (a), *check_b_ = (b);                               \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_))                  \
      FAILF("check failed: %s == %s (\"%s\" != \"%s\")", #a, #b,               \
            check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");   \
  } while (0)

/* Define once per test executable. */
#define TL_TEST_MAIN()                                                         \
  tl_test_case tl_test_cases[TL_TEST_MAX];                                     \
  int tl_test_ncases;                                                          \
  int main(int argc, char **argv) {                                            \
    int ran = 0;                                                               \
    for (int i = 0; i < tl_test_ncases; i++) {                                 \
      if (argc > 1 && strcmp(argv[1], tl_test_cases[i].name))                  \
        continue;                                                              \
      fprintf(stderr, "-- %s\n", tl_test_cases[i].name);                       \
      tl_test_cases[i].fn();                                                   \
      ran++;                                                                   \
    }                                                                          \
    if (!ran) {                                                                \
      fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");     \
      return 2;                                                                \
    }                                                                          \
    return 0;                                                                  \
  }

#endif
