#include "policy/classify.hpp"

#include <gtest/gtest.h>

namespace ballast {
namespace {

Outcome with_status(int status) {
  Outcome o;
  o.status = status;
  return o;
}

TEST(Classify, SuccessIsOk) {
  Verdict v = classify(with_status(200));
  EXPECT_EQ(v.code, ErrorCode::ok);
  EXPECT_FALSE(v.retryable);
}

TEST(Classify, TransientStatusesAreRetryable) {
  for (int s : {408, 409, 429, 500, 502, 503, 504, 529}) {
    Verdict v = classify(with_status(s));
    EXPECT_EQ(v.code, ErrorCode::upstream_status) << s;
    EXPECT_TRUE(v.retryable) << s;
  }
}

TEST(Classify, ConfigurationBugsAreNeverRetried) {
  for (int s : {400, 401, 403, 404, 422}) {
    Verdict v = classify(with_status(s));
    EXPECT_EQ(v.code, ErrorCode::upstream_status) << s;
    EXPECT_FALSE(v.retryable) << s;
  }
}

TEST(Classify, OverABallastLimitIsAResetNeverRetriedWhateverTheStatus) {
  // Headers over 64 KiB stop the transfer before its status means anything; an error body over the
  // buffer limit is as oversized as a successful one.
  for (int s : {0, 200, 500}) {
    Outcome o = with_status(s);
    o.oversized = true;
    Verdict v = classify(o);
    EXPECT_EQ(v.code, ErrorCode::upstream_reset) << s;
    EXPECT_FALSE(v.retryable) << s;
  }
}

TEST(Classify, NothingIsRetriedOnceTheResponseBegan) {
  Outcome o = with_status(200);
  o.response_started = true;
  o.timer = ErrorCode::stream_idle_timeout;
  EXPECT_EQ(classify(o).code, ErrorCode::stream_idle_timeout);
  EXPECT_FALSE(classify(o).retryable);
  o.timer = ErrorCode::ok;
  o.transport = TransportError::reset;
  EXPECT_EQ(classify(o).code, ErrorCode::upstream_reset);
  EXPECT_FALSE(classify(o).retryable);
}

TEST(Classify, TransportErrorsMapToTheirCodes) {
  std::pair<TransportError, ErrorCode> cases[] = {
      {TransportError::dns, ErrorCode::dns_failure},
      {TransportError::proxy, ErrorCode::proxy_failure},
      {TransportError::connect_refused, ErrorCode::connect_refused},
      {TransportError::connect_timeout, ErrorCode::connect_timeout},
      {TransportError::tls, ErrorCode::tls_failure},
      {TransportError::reset, ErrorCode::upstream_reset},
  };
  for (auto [error, code] : cases) {
    Outcome o;
    o.transport = error;
    EXPECT_EQ(classify(o).code, code);
    EXPECT_TRUE(classify(o).retryable);
  }
}

TEST(Classify, TheClientsDeadlineLeavesNothingToRetry) {
  Outcome o;
  o.timer = ErrorCode::deadline_exceeded;
  EXPECT_EQ(classify(o).code, ErrorCode::deadline_exceeded);
  EXPECT_FALSE(classify(o).retryable);
  o.timer = ErrorCode::first_byte_timeout;
  EXPECT_TRUE(classify(o).retryable);
}

TEST(Classify, ATruncatedOrMalformedSuccessIsAReset) {
  Outcome o = with_status(200);
  o.truncated = true;
  EXPECT_EQ(classify(o).code, ErrorCode::upstream_reset);
  o.truncated = false;
  o.malformed = true;
  EXPECT_EQ(classify(o).code, ErrorCode::upstream_reset);
}

TEST(Classify, AClientThatLeftWinsOverEverything) {
  Outcome o = with_status(503);
  o.client_gone = true;
  o.timer = ErrorCode::first_byte_timeout;
  EXPECT_EQ(classify(o).code, ErrorCode::client_disconnected);
  EXPECT_FALSE(classify(o).retryable);
}

}  // namespace
}  // namespace ballast

namespace ballast {
namespace {

TEST(Classify, WhatAnOutcomeSaysAboutTheEndpoint) {
  Outcome ok;
  ok.status = 200;
  EXPECT_EQ(classify(ok).health, Verdict::Health::success);
  EXPECT_EQ(classify(ok).load, LoadSignal::success);
  Outcome refused;
  refused.transport = TransportError::connect_refused;
  EXPECT_EQ(classify(refused).health, Verdict::Health::failure);
  EXPECT_EQ(classify(refused).load, LoadSignal::neutral);
  Outcome slow;
  slow.timer = ErrorCode::first_byte_timeout;
  EXPECT_EQ(classify(slow).health, Verdict::Health::failure);
  EXPECT_EQ(classify(slow).load, LoadSignal::overload);
  for (int s : {500, 502, 504}) {
    Outcome o;
    o.status = s;
    EXPECT_EQ(classify(o).health, Verdict::Health::failure) << s;
  }
  for (int s : {429, 503, 529}) {
    Outcome o;
    o.status = s;
    EXPECT_EQ(classify(o).load, LoadSignal::overload) << s;
  }
  // A rate limit, a request bug or a client that left says nothing about the endpoint's health.
  for (int s : {429, 400, 404}) {
    Outcome o;
    o.status = s;
    EXPECT_EQ(classify(o).health, Verdict::Health::neutral) << s;
  }
  Outcome gone;
  gone.client_gone = true;
  EXPECT_EQ(classify(gone).health, Verdict::Health::neutral);
  Outcome late;
  late.timer = ErrorCode::deadline_exceeded;
  EXPECT_EQ(classify(late).health, Verdict::Health::neutral);
}

}  // namespace
}  // namespace ballast
