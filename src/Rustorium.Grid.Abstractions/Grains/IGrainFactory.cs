namespace Rustorium.Grid;

/// <summary>
/// Hands out references to grains. A reference is cheap, never fails because the grain is not active (grains are
/// virtual: the runtime activates one on the first call) and may be kept, shared and used from any thread.
/// </summary>
/// <remarks>
/// Getting a reference does no I/O. It validates the grain interface (see <see cref="IGrain"/>) and throws
/// <see cref="GridException"/> with <see cref="GridErrorCode.InvalidArgument"/> naming the problem if it is not a
/// valid grain interface. Calls made through the reference fail the way the grain method fails.
/// </remarks>
public interface IGrainFactory
{
    /// <summary>A reference to the grain of type <typeparamref name="TGrainInterface"/> with the integer <paramref name="key"/>.</summary>
    /// <typeparam name="TGrainInterface">A grain interface extending <see cref="IGrainWithIntegerKey"/>.</typeparam>
    /// <param name="key">The grain's key; every value is valid.</param>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if the interface is not a valid grain interface.</exception>
    TGrainInterface GetGrain<TGrainInterface>(long key) where TGrainInterface : IGrainWithIntegerKey;

    /// <summary>A reference to the grain of type <typeparamref name="TGrainInterface"/> with the string <paramref name="key"/>.</summary>
    /// <typeparam name="TGrainInterface">A grain interface extending <see cref="IGrainWithStringKey"/>.</typeparam>
    /// <param name="key">The grain's key, compared ordinally; must not be null (empty is allowed).</param>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    /// <exception cref="GridException"><see cref="GridErrorCode.InvalidArgument"/> if the interface is not a valid grain interface.</exception>
    TGrainInterface GetGrain<TGrainInterface>(string key) where TGrainInterface : IGrainWithStringKey;
}
