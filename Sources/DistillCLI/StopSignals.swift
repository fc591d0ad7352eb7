import Dispatch
import Distill
import Foundation

/// SIGINT (Ctrl-C) and SIGTERM during training: the first asks the trainer to stop after the
/// current optimizer step and save `latest.h5` (`StopRequest`); a second one ends the process at
/// once (exit 130 / 143; a checkpoint being written is left as a temporary file that
/// `distill resume` removes, the previous one is intact).
///
/// The signals are received through Dispatch sources, so nothing runs inside a signal handler.
final class StopSignals {
  let request = StopRequest()
  private var sources: [any DispatchSourceSignal] = []

  /// Installs the handlers for the life of the process.
  static func install() -> StopSignals {
    let signals = StopSignals()
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)  // delivered to the source below instead of killing the process
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { [request = signals.request] in
        if request.isRequested { _exit(128 + number) }
        request.request(signal: number)
        let name = number == SIGINT ? "SIGINT" : "SIGTERM"
        let message =
          "\n\(name): stopping after this step and saving a checkpoint (send it again to quit at once)\n"
        FileHandle.standardError.write(Data(message.utf8))
      }
      source.resume()
      signals.sources.append(source)
    }
    return signals
  }
}

/// Prints how to continue a stopped run and exits with 128 + the signal (130 for SIGINT, 143
/// for SIGTERM; 1 for a stop without a signal).
func exitAfterStop(_ error: TrainingError) -> Never {
  guard case .stopped(let signal, let checkpoint, let folder) = error else { exit(1) }
  FileHandle.standardError.write(Data("stopped; the state is saved in \(checkpoint)\n".utf8))
  print("distill resume \(folder)")
  fflush(nil)
  exit(signal > 0 ? 128 + signal : 1)
}
