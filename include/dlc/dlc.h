/* dlc's public constants: the version and the exit statuses every dlc tool uses (SPEC section 1).
 * The CMake build reads the version from here, so this is its one home. */
#ifndef DLC_DLC_H
#define DLC_DLC_H

#define DLC_VERSION_MAJOR 0
#define DLC_VERSION_MINOR 1
#define DLC_VERSION_PATCH 0

/* Exit statuses of `dlc` and `dlc-opt`. */
enum {
    DLC_EXIT_OK = 0,        /* success */
    DLC_EXIT_USER = 1,      /* an error in the user's program, data or files: a diagnostic was printed */
    DLC_EXIT_USAGE = 2,     /* bad command-line usage */
    DLC_EXIT_ICE = 3,       /* an internal compiler error: a bug in dlc */
    DLC_EXIT_INTERRUPTED = 130, /* training stopped by SIGINT (Ctrl-C) after saving a checkpoint */
};

#endif
