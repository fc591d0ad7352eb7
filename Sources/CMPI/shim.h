// Open MPI's C interface (Debian libopenmpi-dev; include and library paths from pkg-config
// `ompi-c`), for the MPI build only (`--traits MPI`).
//
// Open MPI defines its predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) as macros
// that take the address of a global object, which Swift cannot import; these inline functions
// hand them over. Nothing else is wrapped: Swift calls the MPI functions directly.
#include <mpi.h>

static inline MPI_Comm distill_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm distill_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype distill_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype distill_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype distill_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype distill_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op distill_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op distill_mpi_max(void) { return MPI_MAX; }
static inline MPI_Request distill_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *distill_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Info distill_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline void *distill_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int distill_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int distill_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int distill_mpi_success(void) { return MPI_SUCCESS; }
static inline MPI_Errhandler distill_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
