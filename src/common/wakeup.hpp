// A one-waiter event for coroutines on one thread: notify() wakes the waiter at once, or the wait
// ends at its deadline. The gateway waits on one of these for "the upstream moved, the client left,
// or a bound fired", then looks at what happened.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/time.hpp"

namespace ballast {

class Wakeup {
 public:
  explicit Wakeup(const boost::asio::any_io_executor& ex) : timer_(ex) {}

  void notify() {
    notified_ = true;
    timer_.cancel();
  }

  // True when woken by notify() (the flag is then cleared), false when `deadline` passed.
  boost::asio::awaitable<bool> wait_until(TimePoint deadline) {
    if (!notified_) {
      timer_.expires_at(deadline);
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    bool woken = notified_;
    notified_ = false;
    co_return woken;
  }

 private:
  boost::asio::steady_timer timer_;
  bool notified_ = false;
};

}  // namespace ballast
