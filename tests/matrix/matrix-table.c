/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* matrix-table.c: print the malicious-TAM matrix as the markdown table of docs/malicious-tam.md */
#include <stdio.h>

#include "matrix.h"

int main(void) {
        matrix_print_table(stdout);
        return 0;
}
