// Table: named, typed columns, the in-memory form of a tabular dataset.
//
// Columns are float32, float64, int64 or categorical (strings stored as int32 dictionary codes
// plus the dictionary). Every column has a missing-value mask. Numeric columns are contiguous, so
// their values can be viewed without copying; CopyColumnsToMatrix() gathers chosen columns into a
// row-major float32 matrix for training. A Schema (names + types) describes a table's columns; it
// compares and serialises, so that training data, model bundles and serving requests can be
// checked against one another.
//
// Thread-safety: Table, Column and Schema are values. Const methods may be called concurrently;
// mutation needs external synchronisation.
#ifndef ESCALA_DATA_TABLE_H_
#define ESCALA_DATA_TABLE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "escala/core/matrix.h"

namespace escala::data {

enum class DataType : std::uint8_t { kFloat32, kFloat64, kInt64, kCategorical };

// "float32", "float64", "int64", "categorical".
std::string_view DataTypeName(DataType type);
// Inverse of DataTypeName ("f32"/"double"/"int"/"string" are accepted too). Throws
// kInvalidArgument naming the accepted spellings.
DataType ParseDataType(std::string_view name);
inline bool IsNumeric(DataType type) {
  return type != DataType::kCategorical;
}

struct Field {
  std::string name;
  DataType type = DataType::kFloat64;
  // Why an inferred type is what it is, for messages ("file.csv:12:5: 'n/a'" for the value that
  // made a column categorical); not part of the schema's identity.
  std::string evidence;
  bool operator==(const Field& o) const { return name == o.name && type == o.type; }
};

// The names and types of a table's columns, in order.
class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields);

  const std::vector<Field>& fields() const { return fields_; }
  int num_fields() const { return static_cast<int>(fields_.size()); }
  const Field& field(int i) const { return fields_[static_cast<std::size_t>(i)]; }
  // Index of the named field, or -1.
  int Find(std::string_view name) const;
  // Index of the named field; throws kNotFound naming the field and listing the available ones.
  int Index(std::string_view name) const;

  bool operator==(const Schema& other) const { return fields_ == other.fields_; }
  // Adds a field at the end (Find() keeps returning the first of a repeated name).
  void Append(Field field);
  // Whether every name appears once, and the first name that does not.
  bool unique_names() const { return index_.size() == fields_.size(); }
  std::string FirstDuplicate() const;
  // Empty when equal; otherwise a description of the first difference
  // ("column 3: expected 'age' float64, found 'age' int64").
  std::string Diff(const Schema& expected) const;

  // A stable text form: "escala-schema 1\n" then one "<type> <name>\n" per field (names are
  // escaped so that any string round-trips). Parse() throws kInvalidArgument on malformed text.
  std::string Serialize() const;
  static Schema Parse(std::string_view text);
  // "name:type, name:type, ..." for messages and `escala` output.
  std::string ToString() const;

 private:
  std::vector<Field> fields_;
  // Name -> first field of that name: Find() in constant time, however wide the table.
  std::unordered_map<std::string, int> index_;
};

namespace internal {
// One allocation the columns of a table share (TableBuilder gives each chunk it reads one): it
// starts on a huge page and its whole huge pages are advised (escala/core/memory_info.h), so a
// reader filling a chunk of columns of a few hundred KiB each takes a page fault per 2 MiB, not per
// 4 KiB. Columns take consecutive parts of it; it is freed with the last column holding a part,
// so a column kept alone keeps its chunk's whole block (copy it to let the rest go).
// Thread-safety: Take may be called from any thread.
class ColumnBlock {
 public:
  explicit ColumnBlock(std::size_t bytes);
  ~ColumnBlock();
  ColumnBlock(const ColumnBlock&) = delete;
  ColumnBlock& operator=(const ColumnBlock&) = delete;

  // `bytes` of it, 64-byte aligned, or nullptr when the rest is smaller.
  void* Take(std::size_t bytes) noexcept;
  bool Owns(const void* p) const noexcept {
    const auto at = reinterpret_cast<std::uintptr_t>(p),
               base = reinterpret_cast<std::uintptr_t>(base_);
    return at >= base && at - base < size_;
  }

 private:
  char* base_ = nullptr;
  std::size_t size_ = 0;
  std::atomic<std::size_t> used_{0};  // columns of one table may grow on several threads
};

// An allocator whose resize(n) default-initialises (leaves trivial values unwritten) where
// std::allocator value-initialises (zeroes); resize(n, value) still fills. Column::Grow uses it.
// Storage of a huge page or more starts on one, with its whole huge pages advised. An allocator
// given a ColumnBlock takes storage from it while it has room; a copy of a column gets its own.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;

  DefaultInitAllocator() noexcept = default;
  explicit DefaultInitAllocator(std::shared_ptr<ColumnBlock> block) noexcept
      : block(std::move(block)) {}
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>& other) noexcept  // NOLINT: rebinding
      : block(other.block) {}
  DefaultInitAllocator select_on_container_copy_construction() const { return {}; }

  T* allocate(std::size_t n) {
    if (block != nullptr) {
      if (void* p = block->Take(n * sizeof(T))) return static_cast<T*>(p);
    }
    if (n * sizeof(T) < kHugePageBytes) return std::allocator<T>::allocate(n);
    void* p = ::operator new (n * sizeof(T), std::align_val_t{kHugePageBytes});
    AdviseWholeHugePages(p, n * sizeof(T));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (block != nullptr && block->Owns(p)) return;  // freed with the block
    if (n * sizeof(T) < kHugePageBytes) {
      std::allocator<T>::deallocate(p, n);
    } else {
      ::operator delete (p, std::align_val_t{kHugePageBytes});
    }
  }
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const DefaultInitAllocator<U>& other) const noexcept {
    return block == other.block;
  }

  std::shared_ptr<ColumnBlock> block;
};
}  // namespace internal

// One column. Storage by type: float32 -> float, float64 -> double, int64 -> int64_t,
// categorical -> int32_t codes into dictionary(). Missing values are flagged in the mask and hold
// NaN (floats), 0 (int64) or -1 (categorical codes).
class Column {
 public:
  Column() = default;
  Column(std::string name, DataType type, std::int64_t rows = 0);

  const std::string& name() const { return name_; }
  DataType type() const { return type_; }
  std::int64_t size() const { return size_; }

  // Typed views; each throws kInvalidArgument when the column has another type.
  std::span<const float> f32() const;
  std::span<const double> f64() const;
  std::span<const std::int64_t> i64() const;
  std::span<const std::int32_t> codes() const;
  std::span<float> mutable_f32();
  std::span<double> mutable_f64();
  std::span<std::int64_t> mutable_i64();
  std::span<std::int32_t> mutable_codes();

  // The categories of a categorical column; codes index into it.
  const std::vector<std::string>& dictionary() const { return dictionary_; }
  std::vector<std::string>& mutable_dictionary() { return dictionary_; }
  // The string of row i of a categorical column ("" when missing).
  std::string_view category(std::int64_t i) const;

  // A numeric column as an (rows x 1) matrix view, without copying. Throws unless float32.
  MatrixView<const float> AsMatrixView() const;

  // Value i converted to double (NaN when missing). Categorical columns return the code.
  double GetDouble(std::int64_t i) const;

  // Missing-value mask: empty when no value is missing, else one byte per row (1 = missing).
  std::span<const std::uint8_t> missing_mask() const { return missing_; }
  bool is_missing(std::int64_t i) const {
    return !missing_.empty() && missing_[static_cast<std::size_t>(i)] != 0;
  }
  std::int64_t missing_count() const { return missing_count_; }
  // Marks row i missing (allocates the mask on first use) and stores the missing sentinel.
  void SetMissing(std::int64_t i);
  // Replaces the mask (size() bytes, or empty); recounts.
  void SetMissingMask(std::vector<std::uint8_t> mask);

  // Resizes storage (new rows are zero / code 0 and not missing).
  void Resize(std::int64_t rows);
  // As Resize, but new rows hold unspecified values until the caller writes them: a reader that
  // fills every row it adds does not pay for zeroing (and touching) the memory first. With a
  // block, storage that must move is taken from it where it has room.
  void Grow(std::int64_t rows);
  void Grow(std::int64_t rows, const std::shared_ptr<internal::ColumnBlock>& block);

 private:
  std::string name_;
  DataType type_ = DataType::kFloat64;
  std::int64_t size_ = 0;
  template <class T>
  using Storage = std::vector<T, internal::DefaultInitAllocator<T>>;
  std::variant<Storage<float>, Storage<double>, Storage<std::int64_t>, Storage<std::int32_t>>
      values_;
  std::vector<std::string> dictionary_;
  std::vector<std::uint8_t> missing_;
  std::int64_t missing_count_ = 0;
};

class Table {
 public:
  Table() = default;
  // All columns must have the same length (kInvalidArgument otherwise); names must be unique.
  explicit Table(std::vector<Column> columns);

  std::int64_t num_rows() const { return num_rows_; }
  int num_columns() const { return static_cast<int>(columns_.size()); }
  const Schema& schema() const { return schema_; }

  const Column& column(int i) const { return columns_[static_cast<std::size_t>(i)]; }
  Column& mutable_column(int i) { return columns_[static_cast<std::size_t>(i)]; }
  // Lookup by name; throws kNotFound naming the column and listing the available ones.
  const Column& column(std::string_view name) const;
  int ColumnIndex(std::string_view name) const { return schema_.Index(name); }
  const std::vector<Column>& columns() const { return columns_; }

  // Adds a column of num_rows() values (any length when the table has no columns yet).
  void AddColumn(Column column);

  // Stable global identities of the rows (see escala/data/split.h), or empty when the table was
  // not read from files. Readers of datasets fill them.
  std::span<const std::uint64_t> row_ids() const { return row_ids_; }
  void set_row_ids(std::vector<std::uint64_t> ids);

  // Rows [begin, begin + count) as a new table (copies).
  Table Slice(std::int64_t begin, std::int64_t count) const;
  // The given rows, in order, as a new table (copies).
  Table Take(std::span<const std::int64_t> rows) const;

 private:
  void RebuildSchema();

  std::vector<Column> columns_;
  Schema schema_;
  std::int64_t num_rows_ = 0;
  std::vector<std::uint64_t> row_ids_;
};

// A table read in chunks of rows: each pass visits every row once, chunk by chunk, in a fixed
// order, and passes may repeat. What fits statistics or trains in passes reads it, so that the
// rows need not be one table in memory (a dataset streamed from files: escala/data/stream.h).
class TableChunks {
 public:
  virtual ~TableChunks() = default;
  // The columns of every chunk.
  virtual const Schema& schema() const = 0;
  // One pass; a chunk is valid during its call only.
  virtual void ForEachChunk(const std::function<void(const Table&)>& visit) = 0;
};

// A table in memory as consecutive chunks of at most `chunk_rows` rows (copies, one at a time).
class TableSlices final : public TableChunks {
 public:
  TableSlices(const Table& table, std::int64_t chunk_rows)
      : table_(table), chunk_rows_(chunk_rows) {}
  const Schema& schema() const override { return table_.schema(); }
  void ForEachChunk(const std::function<void(const Table&)>& visit) override;

 private:
  const Table& table_;
  std::int64_t chunk_rows_;
};

// Tables in memory with the same columns, one chunk each (what a DatasetStream returned).
class TableList final : public TableChunks {
 public:
  TableList(const std::vector<Table>& tables, Schema schema)
      : tables_(tables), schema_(std::move(schema)) {}
  const Schema& schema() const override { return schema_; }
  void ForEachChunk(const std::function<void(const Table&)>& visit) override {
    for (const auto& t : tables_) visit(t);
  }

 private:
  const std::vector<Table>& tables_;
  Schema schema_;
};

// The rows of `parts`, in order, as one table (copies). Every part must have the same columns
// (names and types; categorical dictionaries may differ); kInvalidArgument otherwise. Row
// identities are kept when every part has them.
Table ConcatTables(std::span<const Table> parts);

// Copies the named numeric columns of `table`, in the given order, into a row-major float32
// matrix of num_rows() x columns.size() (resized; its allocation is reused). Missing values become
// NaN. Runs in parallel over row blocks. Throws kNotFound for an unknown column and
// kInvalidArgument for a categorical one.
void CopyColumnsToMatrix(const Table& table, std::span<const std::string> columns, MatrixF* out);
// Every numeric column except those named in `exclude`, in table order.
std::vector<std::string> NumericColumnNames(const Table& table,
                                            std::span<const std::string> exclude = {});
// One numeric column as float32 values (labels, weights). Missing values become NaN.
std::vector<float> ColumnToFloat(const Table& table, std::string_view column);

}  // namespace escala::data

#endif  // ESCALA_DATA_TABLE_H_
