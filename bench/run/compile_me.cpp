// bench/run/compile_me.cpp - the input of bench/run's `cc1plus` program (`g++ -O2 -c`): templates,
// the standard containers and algorithms, enough to make the compiler allocate about a million
// times. Never run; only compiled.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

namespace bench {

template <typename T> struct Matrix {
    std::size_t rows = 0, cols = 0;
    std::vector<T> data;
    Matrix(std::size_t r, std::size_t c) : rows(r), cols(c), data(r * c) {}
    T &operator()(std::size_t i, std::size_t j) { return data[i * cols + j]; }
    const T &operator()(std::size_t i, std::size_t j) const { return data[i * cols + j]; }
    Matrix operator*(const Matrix &o) const
    {
        Matrix m(rows, o.cols);
        for (std::size_t i = 0; i < rows; i++)
            for (std::size_t k = 0; k < cols; k++)
                for (std::size_t j = 0; j < o.cols; j++)
                    m(i, j) += (*this)(i, k) * o(k, j);
        return m;
    }
    Matrix transpose() const
    {
        Matrix m(cols, rows);
        for (std::size_t i = 0; i < rows; i++)
            for (std::size_t j = 0; j < cols; j++)
                m(j, i) = (*this)(i, j);
        return m;
    }
};

template <typename K, typename V> class Lru {
  public:
    explicit Lru(std::size_t cap) : cap_(cap) {}
    V *get(const K &k)
    {
        auto it = index_.find(k);
        if (it == index_.end())
            return nullptr;
        touch(it->second);
        return &items_[it->second].second;
    }
    void put(const K &k, V v)
    {
        auto it = index_.find(k);
        if (it != index_.end()) {
            items_[it->second].second = std::move(v);
            touch(it->second);
            return;
        }
        if (items_.size() >= cap_)
            evict();
        index_[k] = items_.size();
        items_.emplace_back(k, std::move(v));
        order_.push_back(items_.size() - 1);
    }
    std::size_t size() const { return index_.size(); }

  private:
    void touch(std::size_t i)
    {
        auto it = std::find(order_.begin(), order_.end(), i);
        if (it != order_.end())
            order_.erase(it);
        order_.push_back(i);
    }
    void evict()
    {
        if (order_.empty())
            return;
        std::size_t victim = order_.front();
        order_.erase(order_.begin());
        index_.erase(items_[victim].first);
    }
    std::size_t cap_;
    std::vector<std::pair<K, V>> items_;
    std::vector<std::size_t> order_;
    std::unordered_map<K, std::size_t> index_;
};

struct Shape {
    virtual ~Shape() = default;
    virtual double area() const = 0;
    virtual std::string name() const = 0;
};
struct Circle : Shape {
    double r;
    explicit Circle(double r) : r(r) {}
    double area() const override { return 3.14159265358979 * r * r; }
    std::string name() const override { return "circle(" + std::to_string(r) + ")"; }
};
struct Rect : Shape {
    double w, h;
    Rect(double w, double h) : w(w), h(h) {}
    double area() const override { return w * h; }
    std::string name() const override
    {
        return "rect(" + std::to_string(w) + "x" + std::to_string(h) + ")";
    }
};

using Value = std::variant<long, double, std::string, std::vector<long>>;

struct Printer {
    std::ostringstream &os;
    void operator()(long v) const { os << v; }
    void operator()(double v) const { os << v; }
    void operator()(const std::string &v) const { os << '"' << v << '"'; }
    void operator()(const std::vector<long> &v) const
    {
        os << '[';
        for (std::size_t i = 0; i < v.size(); i++)
            os << (i ? "," : "") << v[i];
        os << ']';
    }
};

template <typename... Ts> std::string join(const Ts &...xs)
{
    std::ostringstream os;
    ((os << xs << ' '), ...);
    return os.str();
}

template <std::size_t N> struct Fib {
    static constexpr unsigned long value = Fib<N - 1>::value + Fib<N - 2>::value;
};
template <> struct Fib<0> {
    static constexpr unsigned long value = 0;
};
template <> struct Fib<1> {
    static constexpr unsigned long value = 1;
};

template <typename It, typename F> auto map_reduce(It b, It e, F f)
{
    using R = decltype(f(*b));
    std::vector<R> out;
    std::transform(b, e, std::back_inserter(out), f);
    return std::accumulate(out.begin(), out.end(), R{});
}

template <typename T> class Graph {
  public:
    void edge(const T &a, const T &b, double w)
    {
        adj_[a].emplace_back(b, w);
        adj_[b];
    }
    std::map<T, double> dijkstra(const T &src) const
    {
        std::map<T, double> dist;
        std::vector<std::pair<double, T>> heap{{0.0, src}};
        while (!heap.empty()) {
            std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
            auto [d, u] = heap.back();
            heap.pop_back();
            if (dist.count(u))
                continue;
            dist[u] = d;
            auto it = adj_.find(u);
            if (it == adj_.end())
                continue;
            for (const auto &[v, w] : it->second) {
                if (!dist.count(v)) {
                    heap.emplace_back(d + w, v);
                    std::push_heap(heap.begin(), heap.end(), std::greater<>{});
                }
            }
        }
        return dist;
    }

  private:
    std::map<T, std::vector<std::pair<T, double>>> adj_;
};

std::vector<std::unique_ptr<Shape>> make_shapes(int n)
{
    std::vector<std::unique_ptr<Shape>> v;
    for (int i = 0; i < n; i++) {
        if (i % 2)
            v.push_back(std::make_unique<Circle>(i * 0.5));
        else
            v.push_back(std::make_unique<Rect>(i, i + 1.0));
    }
    return v;
}

double total_area(const std::vector<std::unique_ptr<Shape>> &v)
{
    return map_reduce(v.begin(), v.end(), [](const std::unique_ptr<Shape> &s) { return s->area(); });
}

std::string describe(const std::vector<Value> &vals)
{
    std::ostringstream os;
    for (const auto &v : vals) {
        std::visit(Printer{os}, v);
        os << ';';
    }
    return os.str();
}

std::map<std::string, int> word_count(const std::string &text)
{
    std::map<std::string, int> m;
    std::istringstream is(text);
    std::string w;
    while (is >> w) {
        std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
        m[w]++;
    }
    return m;
}

template <typename T> std::vector<T> merge_sorted(std::vector<T> a, std::vector<T> b)
{
    std::vector<T> out;
    std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
    return out;
}

template <typename Tuple, std::size_t... I>
std::string tuple_str(const Tuple &t, std::index_sequence<I...>)
{
    return join(std::get<I>(t)...);
}

int run_all()
{
    Matrix<double> a(8, 8), b(8, 8);
    for (std::size_t i = 0; i < 8; i++)
        for (std::size_t j = 0; j < 8; j++) {
            a(i, j) = double(i + j);
            b(i, j) = double(i * j);
        }
    Matrix<double> c = (a * b).transpose();
    Matrix<long> d(4, 4);
    Matrix<long> e = d * d;

    Lru<std::string, std::vector<int>> lru(16);
    for (int i = 0; i < 64; i++)
        lru.put(std::to_string(i % 20), std::vector<int>(i, i));
    Lru<long, std::string> lru2(4);
    lru2.put(1, "one");

    auto shapes = make_shapes(32);
    double area = total_area(shapes);

    std::vector<Value> vals{1L, 2.5, std::string("x"), std::vector<long>{1, 2, 3}};
    std::string desc = describe(vals);

    auto wc = word_count("the quick brown fox jumps over the lazy dog The End");

    Graph<std::string> g;
    g.edge("a", "b", 1.0);
    g.edge("b", "c", 2.0);
    g.edge("a", "c", 5.0);
    auto dist = g.dijkstra("a");
    Graph<int> gi;
    gi.edge(1, 2, 0.5);
    auto di = gi.dijkstra(1);

    auto m1 = merge_sorted(std::vector<int>{1, 3, 5}, std::vector<int>{2, 4, 6});
    auto m2 = merge_sorted(std::vector<std::string>{"a", "c"}, std::vector<std::string>{"b"});
    auto m3 = merge_sorted(std::vector<double>{1.5}, std::vector<double>{0.5});

    auto t = std::make_tuple(1, 2.0, std::string("three"), 'c');
    std::string ts = tuple_str(t, std::make_index_sequence<4>{});

    std::unordered_map<std::string, std::map<int, std::vector<std::string>>> nested;
    nested["k"][1].push_back(desc);
    nested["j"][2].push_back(ts);

    std::function<long(long)> fact = [&](long n) { return n <= 1 ? 1 : n * fact(n - 1); };

    return int(c(1, 1) + e(0, 0) + area + wc.size() + dist.size() + di.size() + m1.size() +
               m2.size() + m3.size() + nested.size() + fact(10) + Fib<40>::value % 7 +
               *lru.get("3")->data() + lru.size() + lru2.size());
}

} // namespace bench

int bench_entry() { return bench::run_all(); }
