// The system zlib (Debian zlib1g-dev, pulled in by libhdf5-dev), for reading .gz data sets.
#include <zlib.h>
