/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* replay.c: run a fuzz target over every file of its corpus, as an ordinary test */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "targets.h"

int main(int argc, char **argv) {
        const FuzzTarget *t = NULL;
        size_t files = 0, accepted = 0;

        if (argc < 3) {
                fprintf(stderr, "usage: fuzz-replay TARGET DIR...\n");
                return 64;
        }
        for (size_t i = 0; i < fuzz_targets_count; i++)
                if (strcmp(fuzz_targets[i].name, argv[1]) == 0)
                        t = &fuzz_targets[i];
        for (size_t i = 0; i < fuzz_targets_whole_count; i++)
                if (strcmp(fuzz_targets_whole[i].name, argv[1]) == 0)
                        t = &fuzz_targets_whole[i];
        if (!t) {
                fprintf(stderr, "fuzz-replay: unknown target %s\n", argv[1]);
                return 64;
        }

        for (int a = 2; a < argc; a++) {
                DIR *d = opendir(argv[a]);
                struct dirent *de;
                if (!d) {
                        fprintf(stderr, "fuzz-replay: cannot open %s\n", argv[a]);
                        return 66;
                }
                while ((de = readdir(d))) {
                        char path[4096];
                        uint8_t *data = NULL;
                        size_t len;
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[a], de->d_name);
                        if (read_full_file(path, 16u << 20, &data, &len) < 0) {
                                fprintf(stderr, "fuzz-replay: cannot read %s\n", path);
                                closedir(d);
                                return 66;
                        }
                        /* exact-size copy so ASan catches a read one past the end */
                        {
                                uint8_t *exact = malloc(len ? len : 1);
                                if (!exact)
                                        return 70;
                                memcpy(exact, data, len);
                                if (t->run(exact, len) >= 0)
                                        accepted++;
                                free(exact);
                        }
                        free(data);
                        files++;
                }
                closedir(d);
        }
        fuzz_targets_cleanup();
        if (files == 0) {
                fprintf(stderr, "fuzz-replay: %s: empty corpus\n", t->name);
                return 1;
        }
        printf("fuzz-replay %s: %zu inputs replayed without a crash (%zu accepted)\n", t->name, files, accepted);
        return 0;
}
