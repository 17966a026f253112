/*
 * fuzz.h - what the fuzz targets under tests/fuzz/ share. Each target is one file defining
 * LLVMFuzzerTestOneInput; it is linked either with libFuzzer (clang -fsanitize=fuzzer, `make
 * fuzz`) or with replay.c (any compiler, `make test`), which feeds it the files of the
 * regression corpus tests/fuzz/regress/TARGET/ one by one.
 *
 * The contract every target checks: on any bytes, the library returns a status (an error is
 * fine) and never crashes, hangs, leaks past its own frees or reads outside what it was given;
 * the sanitizers (ASan, UBSan) turn any such slip into a crash libFuzzer reports.
 */
#ifndef IL_FUZZ_H
#define IL_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Write the input to a private scratch file with this suffix (the loaders under test take
 * paths) and return its path; the same path every call, removed at exit. NULL on failure. */
const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix);

#endif
