import Autodiff
import Foundation

/// Sums the gradients of a step over the ranks of a data-parallel run, in fused buckets, as
/// PyTorch's DistributedDataParallel and Horovod do.
///
/// The parameters are laid into buckets of about `bucketBytes` in reverse order (the order
/// backward produces their gradients: the last layer's first). During the backward pass of a
/// step's last micro-batch, `ready(_:)` hears of each parameter whose gradient is final; when a
/// bucket's parameters are all final it is copied into the bucket's buffer and its sum starts
/// (`MPI_Iallreduce`) while backward goes on (`overlap`). `finish()` starts what is left, waits,
/// and copies the sums back into the gradients. Each bucket carries one more Float per parameter,
/// 1 when the rank has a gradient for it: a parameter no rank has a gradient for keeps none, so
/// the optimizer skips it as one process's would.
///
/// The gradients are those of the step's loss scaled by each rank's share of the step's samples
/// (`ModelTraining`), so their sum is the gradient of the mean over the whole step.
final class GradientReducer {
  let collectives: any Collectives
  let parameters: [Tensor]
  /// Whether buckets start during backward (otherwise all start in `finish`).
  let overlap: Bool
  /// Parameter indices per bucket, and where each parameter's elements start in its buffer.
  private(set) var buckets: [[Int]] = []
  private var offsets: [Int] = []
  private var buffers: [[Float]] = []
  /// Per bucket: parameters not yet final in this step, and its started sum.
  private var waiting: [Int] = []
  private var started: [PendingSum?] = []
  private var bucketOf: [ObjectIdentifier: Int] = [:]
  /// Seconds spent in `finish` (waiting for sums and copying back), and in starting and poking
  /// sums during backward, since the last `takeTimes()`.
  private(set) var waitSeconds = 0.0
  private(set) var launchSeconds = 0.0

  init(parameters: [Tensor], collectives: any Collectives, bucketBytes: Int, overlap: Bool) {
    self.parameters = parameters
    self.collectives = collectives
    self.overlap = overlap
    offsets = Array(repeating: 0, count: parameters.count)
    var current: [Int] = []
    var bytes = 0
    for index in parameters.indices.reversed() {
      let size = parameters[index].count * 4
      if !current.isEmpty && bytes + size > bucketBytes {
        buckets.append(current)
        (current, bytes) = ([], 0)
      }
      current.append(index)
      bytes += size
    }
    if !current.isEmpty { buckets.append(current) }
    for (b, bucket) in buckets.enumerated() {
      var offset = 0
      for index in bucket {
        offsets[index] = offset
        offset += parameters[index].count
        bucketOf[ObjectIdentifier(parameters[index])] = b
      }
      buffers.append([Float](repeating: 0, count: offset + bucket.count))
    }
    started = Array(repeating: nil, count: buckets.count)
    waiting = buckets.map(\.count)
  }

  /// Bytes summed per step (gradients and presence flags).
  var bytesPerStep: Int { buffers.reduce(0) { $0 + $1.count * 4 } }

  /// Called by backward for each leaf whose gradient is final (the step's last micro-batch).
  func ready(_ leaf: Tensor) {
    guard overlap, let b = bucketOf[ObjectIdentifier(leaf)] else { return }
    waiting[b] -= 1
    let clock = Date()
    if waiting[b] == 0 { launch(b) }
    collectives.poke(started.compactMap { $0 })
    launchSeconds += Date().timeIntervalSince(clock)
  }

  private func launch(_ b: Int) {
    guard started[b] == nil else { return }
    let bucket = buckets[b]
    let total = buffers[b].count
    buffers[b].withUnsafeMutableBufferPointer { buffer in
      for (slot, index) in bucket.enumerated() {
        let offset = offsets[index]
        let count = parameters[index].count
        if let grad = parameters[index].grad {
          grad.storage.withUnsafeBufferPointer { g in
            (buffer.baseAddress! + offset).update(from: g.baseAddress!, count: count)
          }
          buffer[total - bucket.count + slot] = 1
        } else {
          (buffer.baseAddress! + offset).update(repeating: 0, count: count)
          buffer[total - bucket.count + slot] = 0
        }
      }
      started[b] = collectives.startSum(buffer.baseAddress!, count: total)
    }
  }

  /// Starts every bucket not yet started, waits for all, and replaces each gradient by the sum.
  func finish() {
    let clock = Date()
    for b in buckets.indices where started[b] == nil { launch(b) }
    collectives.wait(started.compactMap { $0 })
    for (b, bucket) in buckets.enumerated() {
      let total = buffers[b].count
      buffers[b].withUnsafeBufferPointer { buffer in
        for (slot, index) in bucket.enumerated() {
          let parameter = parameters[index]
          guard buffer[total - bucket.count + slot] > 0 else {
            parameter.grad = nil
            continue
          }
          let start = buffer.baseAddress! + offsets[index]
          if let grad = parameter.grad, !grad.isHalf {
            grad.storage.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: start, count: parameter.count) }
          } else {
            parameter.grad = Tensor(shape: parameter.shape, storage: Array(UnsafeBufferPointer(start: start, count: parameter.count)))
          }
        }
      }
    }
    started = Array(repeating: nil, count: buckets.count)
    waiting = buckets.map(\.count)
    waitSeconds += Date().timeIntervalSince(clock)
  }

  /// The seconds in `finish` and in starting sums since the last call; resets them.
  func takeTimes() -> (wait: Double, launch: Double) {
    defer { (waitSeconds, launchSeconds) = (0, 0) }
    return (waitSeconds, launchSeconds)
  }
}

extension Collectives {
  /// Copies rank 0's values of `tensors` to every rank (initial weights, batch-norm running
  /// statistics), in one broadcast.
  func broadcast(_ tensors: [Tensor]) {
    guard size > 1, !tensors.isEmpty else { return }
    var flat: [Float] = []
    flat.reserveCapacity(tensors.reduce(0) { $0 + $1.count })
    for tensor in tensors { flat += tensor.storage }
    flat.withUnsafeMutableBufferPointer { broadcast($0.baseAddress!, count: $0.count) }
    var offset = 0
    for tensor in tensors {
      let values = Array(flat[offset..<(offset + tensor.count)])
      offset += tensor.count
      if tensor.storage != values {
        if tensor.isHalf {
          tensor.storage = values
          tensor.storeAsHalf()
        } else {
          tensor.storage = values
        }
      }
    }
  }

  /// A hash of the tensors' bits, the same on every rank that holds the same values.
  func fingerprint(_ tensors: [Tensor]) -> UInt64 {
    var hash = WordHash()
    for tensor in tensors { tensor.storage.withUnsafeBufferPointer { hash.mix($0) } }
    return hash.value
  }
}
