// libhdf5's C API (Debian libhdf5-dev; include path from pkg-config `hdf5`).
// HDF5 spells many constants as macros over global ids (H5F_ACC_TRUNC, H5T_NATIVE_FLOAT), which
// do not import into Swift; each one we use is wrapped here as a small inline function.
#include <hdf5.h>

static inline unsigned distill_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned distill_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned distill_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline hid_t distill_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t distill_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t distill_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t distill_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t distill_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t distill_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t distill_H5T_IEEE_F16LE(void) {
  // h5py writes numpy.float16 as a little-endian IEEE binary16 float type built from F32LE.
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}
static inline hid_t distill_H5T_C_S1(void) { return H5T_C_S1; }
