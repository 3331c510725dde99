/* The GPU test hook: loads the CUDA driver the way dlc will (dlopen, never linked) and checks
 * it sees a device. Where there is no driver or no device it exits 77, which CTest reports as
 * skipped; on a GPU machine it must pass. */
#include "tests/unit/check.h"

#include <dlfcn.h>

typedef int (*cu_init_fn)(unsigned);
typedef int (*cu_count_fn)(int *);
typedef int (*cu_version_fn)(int *);

int main(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("skipped: no CUDA driver (%s)\n", dlerror());
        return CHECK_SKIP;
    }
    cu_init_fn init = (cu_init_fn)dlsym(h, "cuInit");
    cu_count_fn count = (cu_count_fn)dlsym(h, "cuDeviceGetCount");
    cu_version_fn version = (cu_version_fn)dlsym(h, "cuDriverGetVersion");
    CHECK(init && count && version);
    if (!init || !count || !version)
        return check_result("test_gpu_probe");
    int rc = init(0), n = 0, v = 0;
    if (rc != 0) {
        printf("skipped: cuInit failed with %d (no usable GPU)\n", rc);
        dlclose(h);
        return CHECK_SKIP;
    }
    CHECK_EQ_INT(count(&n), 0);
    CHECK(n > 0);
    CHECK_EQ_INT(version(&v), 0);
    CHECK(v >= 12000);
    printf("CUDA driver %d.%d, %d device(s)\n", v / 1000, v % 1000 / 10, n);
    dlclose(h);
    return check_result("test_gpu_probe");
}
