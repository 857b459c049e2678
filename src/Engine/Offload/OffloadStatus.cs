namespace Firezone.Actors.Engine.Offload;

/// <summary>Outcome of accepting a packet read with a virtio_net_hdr.</summary>
public enum OffloadStatus
{
    Ok,
    /// <summary>A gso_type this engine does not split (UFO, or an unknown value): the packet is dropped.</summary>
    Unsupported,
    /// <summary>Headers, lengths or offsets that do not fit the packet: dropped.</summary>
    Malformed,
}
