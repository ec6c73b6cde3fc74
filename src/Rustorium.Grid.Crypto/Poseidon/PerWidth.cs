namespace Rustorium.Grid.Crypto.Poseidon;

/// <summary>A lazily built value per Poseidon state width t = 2..17 (built at most once per width in practice; a race builds twice, harmlessly).</summary>
internal sealed class PerWidth<T>(Func<int, T> build) where T : class
{
    private readonly T?[] _values = new T?[PoseidonParameters.MaxInputs + 1];

    public T this[int width]
    {
        get
        {
            var value = Volatile.Read(ref _values[width - 2]);
            if (value is null)
            {
                value = build(width);
                Volatile.Write(ref _values[width - 2], value);
            }
            return value;
        }
    }
}
