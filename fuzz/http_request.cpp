// The bytes a client sends on one connection, read as the downstream server reads them
// (downstream/http_server.cpp): the parser set up and the header read by
// downstream/request_parser.hpp, then the body unless its declared length is over the limit,
// request after request while the connection is kept alive. The input's hash picks how the bytes
// arrive (a few at a time, all at once, or each read ending just past a line ending, as a client
// sending one header line per packet would) and, for half the inputs, small limits.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <tuple>

#include "check.hpp"
#include "downstream/request_parser.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// A client connection that delivers `data` in reads of the sizes a Splits source picks, then EOF.
class ClientStream {
 public:
  enum class Reads { few, all, past_each_line };

  ClientStream(asio::io_context& io, std::string_view data, ballast::fuzz::Splits& random, Reads reads)
      : io_(io), data_(data), random_(random), reads_(reads) {}

  using executor_type = asio::io_context::executor_type;
  executor_type get_executor() { return io_.get_executor(); }

  template <class Buffers>
  size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    if (pos_ == data_.size()) {
      ec = asio::error::eof;
      return 0;
    }
    ec = {};
    size_t n = asio::buffer_copy(buffers, asio::buffer(data_.data() + pos_, next_read()));
    pos_ += n;
    return n;
  }
  template <class Buffers>
  size_t read_some(const Buffers& buffers) {
    beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, size_t)>(
        [this](auto handler, const Buffers& b) {
          beast::error_code ec;
          size_t n = read_some(b, ec);
          asio::post(io_, [h = std::move(handler), ec, n]() mutable { h(ec, n); });
        },
        token, buffers);
  }

 private:
  size_t next_read() {
    size_t left = data_.size() - pos_;
    switch (reads_) {
      case Reads::few:
        return std::min(left, size_t{1} + random_.below(16));
      case Reads::all:
        return left;
      case Reads::past_each_line:
        break;
    }
    size_t nl = data_.find('\n', pos_);
    return nl == std::string_view::npos ? left : std::min(left, nl - pos_ + 2);
  }

  asio::io_context& io_;
  std::string_view data_;
  ballast::fuzz::Splits& random_;
  Reads reads_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  ballast::fuzz::Splits random(input);
  ballast::ServerOptions options;
  if (random.below(2)) {
    options.max_header_bytes = random.below(1024);
    options.max_body_bytes = random.below(1024);
  }
  auto reads = static_cast<ClientStream::Reads>(random.below(3));

  static asio::io_context io;
  ClientStream client(io, input, random, reads);
  beast::flat_buffer buffer;

  for (int request = 0; request < 8; ++request) {
    ballast::RequestParser parser;
    ballast::limit_request_header(parser, options);
    std::tuple<beast::error_code, size_t> header;
    bool read = false;
    asio::co_spawn(io, ballast::read_request_header(client, buffer, parser, options),
                   [&](const std::exception_ptr& e, std::tuple<beast::error_code, size_t> r) {
                     if (e) std::rethrow_exception(e);
                     header = r;
                     read = true;
                   });
    io.restart();
    io.run();
    FUZZ_CHECK(read);
    auto [ec, header_bytes] = header;
    // The whole header is held to the limit, however the bytes arrived.
    FUZZ_CHECK(header_bytes <= options.max_header_bytes || ec == http::error::header_limit);
    if (ec) {
      // What the server answers 400 (431 for header_limit) rather than dropping in silence.
      bool framing = ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                     ec != http::error::end_of_stream && ec != http::error::partial_message;
      FUZZ_CHECK(ec != http::error::header_limit || framing);
      break;
    }
    FUZZ_CHECK(parser.is_header_done());
    bool too_large = ballast::limit_request_body(parser, options);
    FUZZ_CHECK(too_large == (parser.content_length() && *parser.content_length() > options.max_body_bytes));
    if (!too_large && !parser.is_done()) {
      http::read(client, buffer, parser, ec);
      if (ec == http::error::body_limit)
        too_large = true;
      else if (ec)
        break;
    }
    if (too_large) break;  // answered 413, and the connection is closed

    auto& msg = parser.get();
    FUZZ_CHECK(parser.is_done());
    FUZZ_CHECK(msg.body().size() <= options.max_body_bytes);
    if (parser.content_length() && !parser.chunked())
      FUZZ_CHECK(msg.body().size() == *parser.content_length());
    FUZZ_CHECK(!msg.method_string().empty() && !msg.target().empty());

    // The Request the handler gets, made as the server makes it.
    ballast::Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    for (const auto& f : msg) {
      FUZZ_CHECK(!f.name_string().empty());
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    FUZZ_CHECK(req.path.size() + (q == std::string::npos ? 0 : req.query.size() + 1) == req.target.size());
    if (!msg.keep_alive()) break;
  }
  return 0;
}
