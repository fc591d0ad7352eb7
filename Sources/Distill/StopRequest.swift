import Synchronization
import DistillRecipes

/// A request, from another thread, that training stop at the next step boundary and save its
/// state (`Trainer.stopRequest`). The CLI sets it from its SIGINT/SIGTERM handlers; tests set it
/// directly. Thread-safe; the first request's signal number is kept.
public final class StopRequest: Sendable {
  /// -1 while no stop is requested; else the signal number (0 for a request without one).
  private let signalNumber = Atomic<Int32>(-1)

  public init() {}

  /// Asks training to stop; `signal` is recorded for the exit status (130 for SIGINT, 143 for
  /// SIGTERM). Later requests keep the first signal.
  public func request(signal: Int32 = 0) {
    _ = signalNumber.compareExchange(expected: -1, desired: signal, ordering: .relaxed)
  }

  /// Whether a stop was requested.
  public var isRequested: Bool { signalNumber.load(ordering: .relaxed) >= 0 }

  /// The signal of the first request, 0 without one; nil when none was made.
  public var signal: Int32? {
    let value = signalNumber.load(ordering: .relaxed)
    return value >= 0 ? value : nil
  }
}
