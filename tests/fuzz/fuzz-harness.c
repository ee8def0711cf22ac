/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-harness.c: the libFuzzer entry point, built once per target with -DFUZZ_TARGET=fuzz_target_NAME */

#include "targets.h"

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET=fuzz_target_NAME"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        (void)FUZZ_TARGET(data, size);
        return 0;
}
