// OpenBLAS's CBLAS interface (Debian libopenblas-dev; include path from pkg-config `openblas`).
#include <cblas.h>

// LAPACK's sgesdd (singular value decomposition, divide and conquer), which OpenBLAS carries
// (Debian's libopenblas0 builds LAPACK in; no LAPACKE C interface is needed). The Fortran
// calling convention: every argument by reference, matrices column-major, and the length of
// the character argument `jobz` appended as gfortran passes it.
#include <stddef.h>
void sgesdd_(const char *jobz, const int *m, const int *n, float *a, const int *lda, float *s, float *u,
             const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork, int *iwork, int *info,
             size_t jobz_length);
