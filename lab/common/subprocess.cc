#include "lab/common/subprocess.h"

#include <boost/asio/io_context.hpp>
#include <boost/process.hpp>
#include <boost/process/extend.hpp>
#include <future>

#include "lab/common/child_fds.h"

namespace chaoslab {

Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv,
                                 std::chrono::seconds timeout) {
  namespace bp = boost::process;
  if (argv.empty()) return Status::InvalidArgument("RunProcess: empty argv");
  boost::filesystem::path exe = argv[0];
  if (exe.filename() == exe) exe = bp::search_path(argv[0]);
  if (exe.empty() || !boost::filesystem::exists(exe)) {
    return Status::NotFound("program not found: " + argv[0]);
  }
  try {
    boost::asio::io_context io;
    std::future<std::string> out, err;
    std::vector<std::string> args(argv.begin() + 1, argv.end());
    bp::child child(
        exe, bp::args(args), bp::std_in.close(), bp::std_out > out, bp::std_err > err, io,
        bp::extend::on_exec_setup = [](auto&) { CloseInheritedFdsOnExec(); });
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!io.stopped() && std::chrono::steady_clock::now() < deadline) {
      io.run_for(std::chrono::milliseconds(100));
    }
    if (!io.stopped()) {
      child.terminate();
      return Status::Timeout(argv[0] + " did not finish within " + std::to_string(timeout.count()) +
                             " s");
    }
    child.wait();
    ProcessOutput result;
    result.exit_code = child.exit_code();
    result.out = out.get();
    result.err = err.get();
    return result;
  } catch (const std::exception& e) {
    return Status::IoError("running " + argv[0] + ": " + e.what());
  }
}

}  // namespace chaoslab
