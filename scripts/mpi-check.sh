#!/usr/bin/env bash
# The MPI build (docs/DESIGN.md → "Data parallelism"): builds `distill` with the `MPI` trait into
# .build-mpi, then runs the data-parallel tests under mpirun against that release binary (N ranks
# against one process, SIGKILL of a rank and resume, ranks that disagree) and the engine's and
# trainer's data-parallel unit tests. Needs Debian's libopenmpi-dev and openmpi-bin.
set -euo pipefail
cd "$(dirname "$0")/.."

# Open MPI in a container: no cross-memory attach (ptrace) for its shared-memory transport, and
# root allowed; the tests add --oversubscribe themselves (more ranks than cores).
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

swift build -c release --traits MPI --scratch-path .build-mpi
swift build --build-tests --traits MPI --scratch-path .build-mpi
DISTILL_EXECUTABLE="$PWD/.build-mpi/release/distill" swift test --skip-build --traits MPI --scratch-path .build-mpi \
  --filter 'DataParallel'
