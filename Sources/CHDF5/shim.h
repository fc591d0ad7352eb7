// libhdf5's C API (Debian libhdf5-dev; include path from pkg-config `hdf5`).
// HDF5 spells many constants as macros over global ids (H5F_ACC_TRUNC, H5T_NATIVE_FLOAT), which
// do not import into Swift; each one we use is wrapped here as a small inline function.
#include <hdf5.h>
#include <string.h>

static inline unsigned distill_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned distill_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned distill_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned distill_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned distill_H5F_OBJ_ALL(void) { return H5F_OBJ_ALL; }
static inline hid_t distill_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t distill_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t distill_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t distill_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline unsigned distill_H5P_CRT_ORDER_TRACKED(void) { return H5P_CRT_ORDER_TRACKED; }
static inline unsigned distill_H5P_CRT_ORDER_INDEXED(void) { return H5P_CRT_ORDER_INDEXED; }
static inline hid_t distill_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t distill_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t distill_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t distill_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t distill_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t distill_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t distill_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t distill_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t distill_H5T_STD_U64LE(void) { return H5T_STD_U64LE; }
static inline hid_t distill_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t distill_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t distill_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t distill_H5T_C_S1(void) { return H5T_C_S1; }
static inline size_t distill_H5T_VARIABLE(void) { return H5T_VARIABLE; }

/// A new little-endian IEEE binary16 float type, the one h5py writes for numpy.float16: a copy
/// of F32LE with sign bit 15, exponent bits 10–14 (bias 15), mantissa bits 0–9, 2 bytes.
/// The caller owns it: close it with H5Tclose, or lock it with H5Tlock to keep it for the
/// process (the Swift layer creates one, once).
static inline hid_t distill_make_H5T_IEEE_F16LE(void) {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  if (t < 0) return t;
  if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

/// Turns off HDF5's printing of its error stack to stderr for the calling thread (the default
/// stack is per thread in thread-safe builds); failures are reported as Swift errors instead.
static inline herr_t distill_H5E_silence(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Empties the calling thread's error stack.
static inline herr_t distill_H5E_clear(void) { return H5Eclear2(H5E_DEFAULT); }

typedef struct {
  char *buffer;
  size_t capacity;
  const char *last;
  int depth;
  int truncated;
} distill_H5E_summary;

static herr_t distill_H5E_collect(unsigned n, const H5E_error2_t *entry, void *data) {
  distill_H5E_summary *summary = (distill_H5E_summary *)data;
  (void)n;
  if (entry->min_num == H5E_TRUNCATED) summary->truncated = 1;
  if (entry->desc == NULL || entry->desc[0] == 0) return 0;
  if (summary->last != NULL && strcmp(summary->last, entry->desc) == 0) return 0;  // repeated
  summary->last = entry->desc;
  size_t used = strlen(summary->buffer);
  if (used + 3 >= summary->capacity) return 0;
  if (summary->depth > 0) { strcat(summary->buffer, ": "); used += 2; }
  strncat(summary->buffer, entry->desc, summary->capacity - used - 1);
  summary->depth += 1;
  return 0;
}

/// Writes the calling thread's current HDF5 error stack into `buffer` as one line, outermost
/// (the API call) first, innermost (where the problem was found) last, joined by ": ".
/// Returns 1 when HDF5 found the file truncated (minor error H5E_TRUNCATED), else 0.
static inline int distill_H5E_describe(char *buffer, size_t capacity) {
  if (capacity == 0) return 0;
  buffer[0] = 0;
  distill_H5E_summary summary = {buffer, capacity, NULL, 0, 0};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, distill_H5E_collect, &summary);
  return summary.truncated;
}
