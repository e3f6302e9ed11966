// The simulator's --capacity and --queue: how many generations run at once, and the FIFO queue of
// requests waiting for one. A request holds a Claim for its whole life; the Claim's destructor leaves
// the queue or gives the slot back (to the longest waiter first), however the request ends: an
// answer, a refusal, a client gone, a fault, an exception. No I/O: a waiter is woken by a callback.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <utility>

namespace ballast::sim {

class Capacity {
 public:
  // `slots` 0: unlimited; `queue` 0: an unbounded queue.
  Capacity(int slots, int queue) : slots_(slots), queue_(queue) {}
  ~Capacity() = default;
  Capacity(const Capacity&) = delete;
  Capacity& operator=(const Capacity&) = delete;
  Capacity(Capacity&&) = delete;
  Capacity& operator=(Capacity&&) = delete;

  int in_use() const { return in_use_; }
  int max_in_use() const { return max_in_use_; }
  size_t queued() const { return waiting_.size(); }

  class Claim {
   public:
    enum class State { none, queued, granted, refused };

    // `wake` is called when a queued claim is granted the slot another claim gave back.
    Claim(Capacity& capacity, std::function<void()> wake) : capacity_(capacity), wake_(std::move(wake)) {}
    ~Claim() { give_back(); }
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    Claim(Claim&&) = delete;
    Claim& operator=(Claim&&) = delete;

    // A free slot now, else a place at the end of the queue, else (the queue is full) refused.
    State ask() {
      if (state_ != State::none) return state_;
      Capacity& c = capacity_;
      if (c.slots_ <= 0 || (c.in_use_ < c.slots_ && c.waiting_.empty())) {
        c.take(*this);
      } else if (c.queue_ > 0 && c.waiting_.size() >= static_cast<size_t>(c.queue_)) {
        state_ = State::refused;
      } else {
        place_ = c.waiting_.insert(c.waiting_.end(), this);
        state_ = State::queued;
      }
      return state_;
    }
    State state() const { return state_; }
    bool granted() const { return state_ == State::granted; }

    // Leaves the queue, or gives the slot back, now rather than at destruction.
    void give_back() {
      if (state_ == State::queued) capacity_.waiting_.erase(place_);
      if (state_ == State::granted) capacity_.slot_freed();
      state_ = State::none;
    }

   private:
    friend class Capacity;
    Capacity& capacity_;
    std::function<void()> wake_;
    State state_ = State::none;
    std::list<Claim*>::iterator place_;
  };

 private:
  void take(Claim& claim) {
    claim.state_ = Claim::State::granted;
    ++in_use_;
    if (in_use_ > max_in_use_) max_in_use_ = in_use_;
  }
  void slot_freed() {
    --in_use_;
    if (waiting_.empty()) return;
    // The slot passes straight to the longest waiter.
    Claim* next = waiting_.front();
    waiting_.pop_front();
    take(*next);
    if (next->wake_) next->wake_();
  }

  int slots_;
  int queue_;
  int in_use_ = 0;
  int max_in_use_ = 0;
  std::list<Claim*> waiting_;
};

}  // namespace ballast::sim
